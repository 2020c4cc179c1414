package wsjson_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/wsjson"
)

// A JSON request/response round trip: the server answers each request
// with its sum.
func Example() {
	type request struct {
		Numbers []int `json:"numbers"`
	}
	type response struct {
		Sum int `json:"sum"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			var req request
			if err := wsjson.Read(ctx, c, &req); err != nil {
				return // the client closed (or sent something that is not a request)
			}
			var resp response
			for _, n := range req.Numbers {
				resp.Sum += n
			}
			if err := wsjson.Write(ctx, c, resp); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(websocket.StatusNormalClosure, "")
	if err := wsjson.Write(ctx, c, request{Numbers: []int{1, 2, 3}}); err != nil {
		log.Fatal(err)
	}
	var resp response
	if err := wsjson.Read(ctx, c, &resp); err != nil {
		log.Fatal(err)
	}
	fmt.Println("sum:", resp.Sum)
	// Output: sum: 6
}
