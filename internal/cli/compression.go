package cli

import (
	"compress/flate"
	"fmt"
	"strconv"

	"github.com/wsdriver/websocket"
)

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
	e.Var((*levelFlag)(&c.Level), "compress-level", "flate level with -compress: 1 (fastest) to 9 (smallest), -1 flate's default, -2 Huffman only, 0 the library's default (1)")
	e.Bool(&c.NoContextTakeover, "no-context-takeover", false, "with -compress, ask for no context takeover in both directions (less memory, less compression)")
}

// Options returns the library's compression options, nil when off.
func (c *Compression) Options() *websocket.CompressionOptions {
	if !c.On {
		return nil
	}
	return &websocket.CompressionOptions{Level: c.Level, NoContextTakeover: c.NoContextTakeover}
}

// levelFlag is an int flag that refuses what compress/flate cannot do, so a
// typo is reported instead of silently becoming the default level.
type levelFlag int

func (l *levelFlag) String() string { return strconv.Itoa(int(*l)) }

func (l *levelFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < flate.HuffmanOnly || n > flate.BestCompression {
		return fmt.Errorf("compression level %q must be an integer from %d to %d", s, flate.HuffmanOnly, flate.BestCompression)
	}
	*l = levelFlag(n)
	return nil
}
