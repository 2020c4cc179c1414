package servers

import (
	"bytes"
	"context"
	"net/http"

	"github.com/gorilla/websocket"
)

func init() {
	register(Server{
		Name:      "gorilla",
		Doc:       "gorilla/websocket Upgrader with default (reused hijack) buffers; NextReader into a reused buffer, WriteMessage; PreparedMessage for broadcast",
		Broadcast: true,
		Run:       runGorilla,
	})
}

func runGorilla(ctx context.Context, addr string, mode Mode) error {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	h := newHub[*websocket.Conn]()
	return serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if mode == Broadcast {
			h.add(c)
			defer h.remove(c)
		}
		var bb bytes.Buffer
		for {
			mt, rd, err := c.NextReader()
			if err != nil {
				logErr("gorilla", err)
				return
			}
			bb.Reset()
			if _, err := bb.ReadFrom(rd); err != nil {
				return
			}
			if mode == Broadcast {
				pm, err := websocket.NewPreparedMessage(mt, bb.Bytes())
				if err != nil {
					return
				}
				h.each(func(c *websocket.Conn) { c.WritePreparedMessage(pm) })
				continue
			}
			if err := c.WriteMessage(mt, bb.Bytes()); err != nil {
				return
			}
		}
	}))
}
