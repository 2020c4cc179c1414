package websocket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
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

// connectProxy is the smallest HTTP CONNECT proxy: it opens a TCP tunnel to
// the requested host and copies bytes both ways. It stands in for squid or
// tinyproxy (which the interop tests run) so that the example below can run
// on its own.
func connectProxy(tunnels chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		target, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		client, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			target.Close()
			return
		}
		tunnels <- r.Host
		brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		brw.Flush()
		go func() { io.Copy(target, brw); target.Close() }()
		io.Copy(client, target)
		client.Close()
	})
}

// Dialing through an HTTP proxy that the Proxy option names: the
// connection is a CONNECT tunnel, and everything else is unchanged.
func ExampleClientOptions_throughAProxy() {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		typ, msg, err := c.Read(r.Context())
		if err == nil {
			c.Write(r.Context(), typ, msg)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer echo.Close()
	tunnels := make(chan string, 1)
	proxy := httptest.NewServer(connectProxy(tunnels))
	defer proxy.Close()

	proxyURL, _ := url.Parse(proxy.URL)
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, wsURL(echo), &websocket.ClientOptions{Proxy: http.ProxyURL(proxyURL)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.TextMessage, []byte("hello"))
	_, msg, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tunnel to the echo server:", <-tunnels == strings.TrimPrefix(echo.URL, "http://"))
	fmt.Println("echo:", string(msg))
	// Output:
	// tunnel to the echo server: true
	// echo: hello
}
