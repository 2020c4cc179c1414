package eventloop_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	websocket "github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// A program moves from net/http to the event-loop backend by changing the
// line that serves its handler; the handler itself is unchanged.
func ExampleListenAndServe() {
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, nil)
		c.OnMessage(func(m websocket.Message) { c.SendText(m.Text()) })
		c.Start()
	})
	// log.Fatal(http.ListenAndServe(":8080", nil))
	log.Fatal(eventloop.ListenAndServe(":8080", http.DefaultServeMux))
}

// An event-API echo server with its handlers on the event loops: the
// fastest setting, for handlers that never block.
func ExampleServer_handlersOnLoop() {
	s := &eventloop.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := websocket.NewServer(w, r, nil)
			c.OnMessage(func(m websocket.Message) {
				c.SendText("echo: " + m.Text()) // never blocks: queued if the socket is full
			})
			c.Start()
		}),
		Loops:          2,
		HandlersOnLoop: true,
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+s.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	c.Write(ctx, websocket.TextMessage, []byte("hello"))
	_, p, err := c.ReadMessage(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(p))
	c.Close(websocket.StatusNormalClosure, "")
	// Output: echo: hello
}

// Shutting down: the application closes its WebSocket connections with a
// close frame (here with 1001, "going away"), then Shutdown waits for the
// handlers still running and closes what is left; Serve returns
// ErrServerClosed.
func ExampleServer_Shutdown() {
	var conns = make(chan *websocket.Conn, 1)
	s := &eventloop.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := websocket.NewServer(w, r, nil)
		c.OnOpen(func() { conns <- c })
		c.Start()
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }() // like http.Server.Serve

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}

	// The application's part: it knows its connections.
	server := <-conns
	server.Close(websocket.StatusGoingAway, "shutting down")
	_, _, err = client.ReadMessage(ctx, nil)
	fmt.Println("client:", err)
	<-server.Done()

	if err := s.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Serve:", <-served)
	// Output:
	// client: websocket: closed: 1001 (going away): "shutting down"
	// Serve: http: Server closed
}
