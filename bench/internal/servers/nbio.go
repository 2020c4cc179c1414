package servers

import (
	"context"
	"net/http"
	"os"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func init() {
	register(Server{
		Name:      "nbio",
		Doc:       "lesismal/nbio nbhttp engine in non-blocking (epoll) mode with the websocket Upgrader; OnMessage runs inline on the poller (ServerExecutor) and calls WriteMessage; payload released after the handler",
		Broadcast: true,
		Run:       runNbio,
	})
}

func runNbio(ctx context.Context, addr string, mode Mode) error {
	// stdout belongs to the report's line protocol.
	logging.Output = os.Stderr
	h := newHub[*websocket.Conn]()
	up := websocket.NewUpgrader()
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.OnOpen(func(c *websocket.Conn) {
		if mode == Broadcast {
			h.add(c)
		}
	})
	up.OnClose(func(c *websocket.Conn, err error) {
		if mode == Broadcast {
			h.remove(c)
		}
	})
	up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		if mode == Broadcast {
			h.each(func(c *websocket.Conn) { c.WriteMessage(mt, data) })
			return
		}
		if err := c.WriteMessage(mt, data); err != nil {
			logErr("nbio", err)
		}
	})
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := up.Upgrade(w, r, nil); err != nil {
			return
		}
	})
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{addr},
		Handler:                 mux,
		IOMod:                   nbhttp.IOModNonBlocking,
		ReleaseWebsocketPayload: true,
		// Run OnMessage on the poller goroutine that parsed the frame
		// instead of handing it to nbio's goroutine pool: an echo never
		// blocks, so the hand-off would be pure overhead.
		ServerExecutor: func(f func()) { f() },
	})
	if err := engine.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	return engine.Shutdown(context.Background())
}
