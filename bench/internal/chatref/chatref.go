// Package chatref is the reference chat of the chat fan-out benchmark: a
// plain gorilla/websocket chat in the design of gorilla's own chat example
// (one hub, per client a writer goroutine fed by a buffered channel of 256
// messages, a client whose channel is full dropped), written here from that
// description. It is what "a chat most people would write" costs, against
// which cmd/chat is measured.
package chatref

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// QueueLen is the number of messages a client's writer may have waiting
// before the client is dropped as too slow, as in gorilla's example.
const QueueLen = 256

// closeTooSlow is the close frame a dropped client gets: 1008, policy
// violation, the code cmd/chat uses for the same case, so the load generator
// counts both servers' drops alike.
var closeTooSlow = websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "send queue overflow: client too slow")

// client is one connection. The hub owns send: only the hub goroutine
// writes to it and closes it.
type client struct {
	conn *websocket.Conn
	nick string
	send chan []byte
	// slow is set by the hub before it closes send because the queue was
	// full, so the writer says why in its close frame.
	slow atomic.Bool
}

// hub is the room: it owns the set of clients and serialises joins, leaves
// and broadcasts through its goroutine.
type hub struct {
	join      chan *client
	leave     chan *client
	broadcast chan []byte
	done      <-chan struct{} // closed when the hub stops
	clients   map[*client]struct{}
}

func (h *hub) run(ctx context.Context) {
	for {
		select {
		case c := <-h.join:
			h.clients[c] = struct{}{}
		case c := <-h.leave:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					// Full queue: the client is too slow; drop it rather
					// than hold up everyone else.
					c.slow.Store(true)
					delete(h.clients, c)
					close(c.send)
				}
			}
		case <-ctx.Done():
			// Hijacked connections outlive the HTTP server: end them so
			// that every reader and writer returns.
			for c := range h.clients {
				c.conn.Close()
				close(c.send)
			}
			return
		}
	}
}

// writer sends the client's queued messages, one frame each, and the close
// frame when the hub closes the queue.
func (c *client) writer() {
	defer c.conn.Close()
	for m := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.conn.WriteMessage(websocket.TextMessage, m); err != nil {
			// The reader notices the closed connection and leaves; drain
			// until the hub closes the queue.
			c.conn.Close()
			for range c.send {
			}
			return
		}
	}
	if c.slow.Load() {
		c.conn.WriteControl(websocket.CloseMessage, closeTooSlow, time.Now().Add(time.Second))
	}
}

// reader turns each text message into "nick: text" for the hub.
func (c *client) reader(h *hub) {
	defer func() {
		select {
		case h.leave <- c:
		case <-h.done:
		}
	}()
	c.conn.SetReadLimit(4096)
	for {
		_, m, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		out := make([]byte, 0, len(c.nick)+2+len(m))
		out = append(append(append(out, c.nick...), ": "...), m...)
		select {
		case h.broadcast <- out:
		case <-h.done:
			return
		}
	}
}

// Run serves the chat on addr (WebSocket on any path) until ctx is done.
func Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln)
}

// Serve serves the chat on ln until ctx is done, and closes ln.
func Serve(ctx context.Context, ln net.Listener) error {
	h := &hub{
		join:      make(chan *client),
		leave:     make(chan *client),
		broadcast: make(chan []byte),
		done:      ctx.Done(),
		clients:   map[*client]struct{}{},
	}
	go h.run(ctx)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var seq atomic.Int64
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{conn: conn, nick: "user-" + strconv.FormatInt(seq.Add(1), 10), send: make(chan []byte, QueueLen)}
		select {
		case h.join <- c:
		case <-h.done:
			conn.Close()
			return
		}
		go c.writer()
		c.reader(h)
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
