package cli

import "github.com/wsdriver/websocket"

// Compression holds the -compress, -compress-level and
// -no-context-takeover flags.
type Compression struct {
	On                bool
	Level             int
	NoContextTakeover bool
}

// Register adds the compression flags to e.
func (c *Compression) Register(e *Env) {
	e.Bool(&c.On, "compress", false, "negotiate permessage-deflate (RFC 7692)")
	e.Int(&c.Level, "compress-level", 0, "flate level 1-9 with -compress (0: the library's default)")
	e.Bool(&c.NoContextTakeover, "no-context-takeover", false, "with -compress, ask for no context takeover in both directions (less memory, less compression)")
}

// Options returns the library's compression options, nil when off.
func (c *Compression) Options() *websocket.CompressionOptions {
	if !c.On {
		return nil
	}
	return &websocket.CompressionOptions{}
}
