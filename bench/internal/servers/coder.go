package servers

import (
	"bytes"
	"context"
	"net/http"

	"github.com/coder/websocket"
)

func init() {
	register(Server{
		Name: "coder",
		Doc:  "coder/websocket Accept without compression; Reader into a reused buffer, Write",
		Run:  runCoder,
	})
}

func runCoder(ctx context.Context, addr string, mode Mode) error {
	if mode != Echo {
		return unsupported("coder")
	}
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled, InsecureSkipVerify: true}
	return serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		// The default 32 KiB read limit would reject the 64 KiB row.
		c.SetReadLimit(1 << 26)
		ctx := context.Background()
		var bb bytes.Buffer
		for {
			typ, rd, err := c.Reader(ctx)
			if err != nil {
				logErr("coder", err)
				return
			}
			bb.Reset()
			if _, err := bb.ReadFrom(rd); err != nil {
				return
			}
			if err := c.Write(ctx, typ, bb.Bytes()); err != nil {
				return
			}
		}
	}))
}
