package wsnet_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsnet"
)

// A line protocol over a WebSocket: the server reads lines with a
// bufio.Scanner and answers each with its upper-case form, as it would
// over TCP.
func ExampleNetConn() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conn := wsnet.NetConn(context.Background(), ws, websocket.TextMessage)
		defer conn.Close()
		lines := bufio.NewScanner(conn)
		for lines.Scan() {
			fmt.Fprintln(conn, strings.ToUpper(lines.Text()))
		}
	}))
	defer srv.Close()

	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	conn := wsnet.NetConn(context.Background(), ws, websocket.TextMessage)
	defer conn.Close()
	replies := bufio.NewReader(conn)
	for _, line := range []string{"hello", "line protocol"} {
		fmt.Fprintln(conn, line)
		reply, err := replies.ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(reply)
	}
	// Output:
	// HELLO
	// LINE PROTOCOL
}
