package servers

import (
	"context"
	"net/http"

	"github.com/wsdriver/websocket"
)

func init() {
	register(Server{
		Name:      "ours",
		Doc:       "github.com/wsdriver/websocket blocking API: Accept, then ReadMessage into a reused buffer and Write; NewPreparedMessage + WritePrepared for broadcast",
		Broadcast: true,
		Run:       runOurs,
	})
	register(Server{
		Name:      "ours-event",
		Doc:       "github.com/wsdriver/websocket event API: NewServer, OnMessage writes the message back (Write, same type), Start; NewPreparedMessage + WritePrepared for broadcast",
		Broadcast: true,
		Run:       runOursEvent,
	})
}

func runOurs(ctx context.Context, addr string, mode Mode) error {
	return serveHTTP(ctx, addr, blockingHandler("ours", mode))
}

// blockingHandler is ours's handler, the blocking API's echo (or
// broadcast); the event-loop backend's ours-loop-blocking serves it too.
func blockingHandler(name string, mode Mode) http.Handler {
	h := newHub[*websocket.Conn]()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.ServerOptions{InsecureSkipOriginCheck: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		if mode == Broadcast {
			h.add(c)
			defer h.remove(c)
		}
		ctx := context.Background()
		var buf []byte
		for {
			typ, msg, err := c.ReadMessage(ctx, buf)
			if err != nil {
				logErr(name, err)
				return
			}
			buf = msg
			if mode == Broadcast {
				broadcastOurs(h, typ, msg)
				continue
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})
}

func runOursEvent(ctx context.Context, addr string, mode Mode) error {
	h := newHub[*websocket.Conn]()
	return serveHTTP(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handler only writes m.Data back (or broadcasts it) before it
		// returns and never keeps it, so it can borrow the read buffer: no
		// allocation or copy per message, as the other servers' echo loops
		// reuse their buffers.
		c := websocket.NewServer(w, r, &websocket.ServerOptions{InsecureSkipOriginCheck: true, BorrowMessageData: true})
		c.OnMessage(func(m websocket.Message) {
			if mode == Broadcast {
				broadcastOurs(h, m.Type, m.Data)
				return
			}
			// Write sends the bytes as they are, with their type; SendText
			// would need a string, which is a copy.
			c.Write(context.Background(), m.Type, m.Data)
		})
		if mode == Broadcast {
			c.OnClose(func(websocket.StatusCode, string) { h.remove(c) })
		}
		if err := c.Start(); err != nil {
			return
		}
		if mode == Broadcast {
			h.add(c)
		}
		// Start has taken the connection over; returning lets net/http's
		// goroutine and its stack go.
	}))
}

// broadcastOurs encodes a message once and writes it to every connection
// of the hub, as both of our servers broadcast.
func broadcastOurs(h *hub[*websocket.Conn], typ websocket.MessageType, msg []byte) {
	pm, err := websocket.NewPreparedMessage(typ, msg)
	if err != nil {
		return
	}
	h.each(func(c *websocket.Conn) { c.WritePrepared(context.Background(), pm) })
}
