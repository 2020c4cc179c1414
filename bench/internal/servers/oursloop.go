package servers

import (
	"context"
	"errors"
	"net/http"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// The library on its event-loop backend (package eventloop): the same
// handlers as ours-event and ours, served by eventloop.Server instead of
// net/http. Pinned to one core, GOMAXPROCS is 1 and so is the number of
// loops.
func init() {
	register(Server{
		Name:      "ours-loop",
		Doc:       "github.com/wsdriver/websocket event API on the event-loop backend (eventloop.Server, HandlersOnLoop): OnMessage writes the borrowed message back (Write, same type); NewPreparedMessage + WritePrepared for broadcast",
		Broadcast: true,
		Run:       func(ctx context.Context, addr string, mode Mode) error { return runOursLoop(ctx, addr, mode, true) },
	})
	register(Server{
		Name:      "ours-loop-worker",
		Doc:       "as ours-loop, with the handlers on a goroutine per busy connection (the eventloop default)",
		Broadcast: true,
		Run:       func(ctx context.Context, addr string, mode Mode) error { return runOursLoop(ctx, addr, mode, false) },
	})
	register(Server{
		Name:      "ours-loop-blocking",
		Doc:       "github.com/wsdriver/websocket blocking API on the event-loop backend: the ours handler (Accept, ReadMessage into a reused buffer, Write) under eventloop.Server",
		Broadcast: true,
		Run:       runOursLoopBlocking,
	})
}

// serveLoop runs h on an event-loop server on addr until ctx is done, as
// serveHTTP does on net/http.
func serveLoop(ctx context.Context, addr string, h http.Handler, onLoop bool) error {
	srv := &eventloop.Server{Handler: h, HandlersOnLoop: onLoop}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.ListenAndServe(addr); !errors.Is(err, eventloop.ErrServerClosed) {
		return err
	}
	return nil
}

func runOursLoop(ctx context.Context, addr string, mode Mode, onLoop bool) error {
	h := newHub[*websocket.Conn]()
	return serveLoop(ctx, addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handler is ours-event's: it borrows m.Data (it writes it
		// and keeps nothing), and its writes never block on this backend,
		// so it may run on the loop.
		c := websocket.NewServer(w, r, &websocket.ServerOptions{InsecureSkipOriginCheck: true, BorrowMessageData: true})
		c.OnMessage(func(m websocket.Message) {
			if mode == Broadcast {
				broadcastOurs(h, m.Type, m.Data)
				return
			}
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
	}), onLoop)
}

func runOursLoopBlocking(ctx context.Context, addr string, mode Mode) error {
	return serveLoop(ctx, addr, blockingHandler("ours-loop-blocking", mode), false)
}
