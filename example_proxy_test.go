package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wsdriver/websocket"
)

// Choosing the proxy. With Proxy nil, Dial goes through the proxy that
// HTTP_PROXY (ws://) or HTTPS_PROXY (wss://) names, except for NO_PROXY's
// hosts and loopback addresses. This example dials a server on the
// Internet, so it is compiled but not run.
func ExampleClientOptions_proxy() {
	// Always through this proxy, with its user and password (HTTP CONNECT
	// with Basic authentication; socks5:// and socks5h:// work too).
	proxy, err := url.Parse("http://user:password@proxy.example:3128")
	if err != nil {
		log.Fatal(err)
	}
	opts := &websocket.ClientOptions{Proxy: http.ProxyURL(proxy)}

	// Never through a proxy, whatever the environment says.
	direct := &websocket.ClientOptions{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
	_ = direct

	// The environment's proxy, except for one domain. The request's URL
	// has ws:// as http:// and wss:// as https://.
	_ = &websocket.ClientOptions{Proxy: func(r *http.Request) (*url.URL, error) {
		if strings.HasSuffix(r.URL.Hostname(), ".internal.example") {
			return nil, nil
		}
		return http.ProxyFromEnvironment(r)
	}}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://ws.example/chat", opts)
	var pe *websocket.ProxyError
	switch {
	case errors.As(err, &pe) && pe.StatusCode == http.StatusProxyAuthRequired:
		log.Fatalf("the proxy wants other credentials: %v", err)
	case err != nil:
		log.Fatal(err)
	}
	defer c.CloseNow()
	fmt.Println("connected through", proxy.Redacted())
}
