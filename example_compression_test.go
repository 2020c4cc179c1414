package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsdriver/websocket"
)

// permessage-deflate is used only when both sides ask for it: the server
// accepts it with ServerOptions.Compression, the client offers it with
// ClientOptions.Compression. Reads and writes do not change; the library
// compresses messages of at least Threshold bytes and inflates what it
// receives.
func ExampleCompressionOptions() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.ServerOptions{
			// Each message compressed on its own: no per-connection
			// compressor state, and WritePrepared compresses a broadcast
			// once for all such connections.
			Compression: &websocket.CompressionOptions{NoContextTakeover: true},
		})
		if err != nil {
			return
		}
		ctx := r.Context()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			c.Write(ctx, typ, msg)
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.ClientOptions{
		Compression: &websocket.CompressionOptions{},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	fmt.Println("agreed:", resp.Header.Get("Sec-WebSocket-Extensions"))

	text := strings.Repeat("compressible ", 100)
	c.Write(ctx, websocket.TextMessage, []byte(text))
	_, msg, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("echoed intact:", string(msg) == text)
	// Output:
	// agreed: permessage-deflate; server_no_context_takeover; client_no_context_takeover
	// echoed intact: true
}
