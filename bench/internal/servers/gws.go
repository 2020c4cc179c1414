package servers

import (
	"context"
	"net"

	"github.com/lxzan/gws"
)

func init() {
	register(Server{
		Name:      "gws",
		Doc:       "lxzan/gws Server (own listener, no net/http) with default options; WriteMessage from OnMessage; gws.Broadcaster for broadcast",
		Broadcast: true,
		Run:       runGws,
	})
}

type gwsHandler struct {
	gws.BuiltinEventHandler
	mode Mode
	hub  *hub[*gws.Conn]
}

func (g *gwsHandler) OnOpen(c *gws.Conn) {
	if g.mode == Broadcast {
		g.hub.add(c)
	}
}

func (g *gwsHandler) OnClose(c *gws.Conn, err error) {
	if g.mode == Broadcast {
		g.hub.remove(c)
	}
}

func (g *gwsHandler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	if g.mode == Broadcast {
		b := gws.NewBroadcaster(m.Opcode, m.Bytes())
		g.hub.each(func(c *gws.Conn) { b.Broadcast(c) })
		b.Close()
		return
	}
	if err := c.WriteMessage(m.Opcode, m.Bytes()); err != nil {
		logErr("gws", err)
	}
}

func runGws(ctx context.Context, addr string, mode Mode) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	srv := gws.NewServer(&gwsHandler{mode: mode, hub: newHub[*gws.Conn]()}, &gws.ServerOption{})
	err = srv.RunListener(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
