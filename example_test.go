package websocket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wsdriver/websocket"
)

// wsURL turns an httptest server's URL into a ws:// one.
func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// The seed's echo server, with the event API, mounted on net/http.
func ExampleNewServer() {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, &websocket.ServerOptions{
			MaxLength: 1 << 20,
			Protocols: []string{"echo"},
			Header:    http.Header{"X-Served-By": {"example"}},
		})
		ws.OnMessage(func(m websocket.Message) {
			if m.Type == websocket.TextMessage {
				ws.SendText(m.Text())
			} else {
				ws.SendBinary(append([]byte(nil), m.Data...))
			}
		})
		if err := ws.Start(); err != nil {
			log.Print(err) // the client already got an HTTP error
		}
	})
	srv := httptest.NewServer(echo)
	defer srv.Close()

	ctx := context.Background()
	c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.ClientOptions{Protocols: []string{"echo"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	c.Write(ctx, websocket.TextMessage, []byte("Hi"))
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg), c.Protocol(), resp.Header.Get("X-Served-By"))
	// Output: Hi echo example
}

// The seed's client, with the event API: handlers first, then Start.
func ExampleNewClient() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := websocket.NewServer(w, r, nil)
		ws.OnMessage(func(m websocket.Message) { ws.Send(m.Text()) })
		ws.Start()
	}))
	defer srv.Close()

	client := websocket.NewClient(wsURL(srv), nil)
	done := make(chan struct{})
	client.OnOpen(func() { fmt.Println("state:", client.ReadyState(), client.Version()) })
	client.OnMessage(func(m websocket.Message) {
		fmt.Println("Got:", m.Text())
		client.Close(websocket.StatusNormalClosure, "thanks")
	})
	client.OnClose(func(code websocket.StatusCode, reason string) {
		fmt.Printf("closed: %v %q\n", code, reason)
		close(done)
	})
	client.Send("Hi") // queued until the connection opens
	if err := client.Start(); err != nil {
		log.Fatal(err)
	}
	<-done
	// Output:
	// state: open hybi-13
	// Got: Hi
	// closed: 1000 (normal closure) ""
}

// A server with the blocking API: its own read loop, a reused buffer.
func ExampleAccept() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		var buf []byte
		for {
			typ, msg, err := c.ReadMessage(ctx, buf)
			if err != nil {
				return // a *websocket.CloseError once the client closed
			}
			buf = msg
			c.Write(ctx, typ, []byte(strings.ToUpper(string(msg))))
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	c.Write(ctx, websocket.TextMessage, []byte("shout"))
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	// Output: SHOUT
}

// A client with the blocking API, streaming one message with NextWriter.
func ExampleDial() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		typ, msg, _ := c.Read(r.Context())
		c.Write(r.Context(), typ, msg)
		c.Read(r.Context()) // until the client closes
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		log.Fatal(err)
	}
	w, _ := c.NextWriter(ctx, websocket.TextMessage)
	fmt.Fprint(w, "streamed ")
	fmt.Fprint(w, "in pieces")
	w.Close()
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	c.Close(websocket.StatusNormalClosure, "")
	// Output: streamed in pieces
}

// Close handling: the close code and reason arrive as a *CloseError.
func ExampleCloseError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(websocket.StatusGoingAway, "server restarting")
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason)
	}
	fmt.Println(websocket.CloseStatus(err) == websocket.StatusGoingAway, c.ReadyState())
	// Output:
	// 1001 (going away) server restarting
	// true closed
}

// A handshake the server refuses comes back as a *HandshakeError with the
// HTTP status and the server's reason.
func ExampleHandshakeError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		websocket.Accept(w, r, nil) // same-origin policy by default
	}))
	defer srv.Close()

	_, _, err := websocket.Dial(context.Background(), wsURL(srv), &websocket.ClientOptions{
		Header: http.Header{"Origin": {"https://elsewhere.example"}},
	})
	var he *websocket.HandshakeError
	if errors.As(err, &he) {
		fmt.Println(he.StatusCode)
	}
	// Output: 403
}

// Who owns Message.Data. By default each message's Data is a new slice
// that the handler may keep; with BorrowMessageData it is only lent until
// OnMessage returns, saving an allocation per message, and what outlives
// the handler must be copied.
func ExampleMessage() {
	kept := make(chan [][]byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		borrow := r.URL.Path == "/borrow"
		ws := websocket.NewServer(w, r, &websocket.ServerOptions{BorrowMessageData: borrow})
		var msgs [][]byte
		ws.OnMessage(func(m websocket.Message) {
			if borrow {
				// Lent: the bytes may belong to another connection soon.
				msgs = append(msgs, bytes.Clone(m.Data))
			} else {
				// Owned: keep the slice itself.
				msgs = append(msgs, m.Data)
			}
		})
		ws.OnClose(func(websocket.StatusCode, string) { kept <- msgs })
		ws.Start()
	}))
	defer srv.Close()

	ctx := context.Background()
	for _, path := range []string{"/own", "/borrow"} {
		c, _, err := websocket.Dial(ctx, wsURL(srv)+path, nil)
		if err != nil {
			log.Fatal(err)
		}
		for _, s := range []string{"one", "two", "three"} {
			c.Write(ctx, websocket.TextMessage, []byte(s))
		}
		c.Close(websocket.StatusNormalClosure, "")
		fmt.Printf("%s: %q\n", path, <-kept)
	}
	// Output:
	// /own: ["one" "two" "three"]
	// /borrow: ["one" "two" "three"]
}
