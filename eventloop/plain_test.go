package eventloop_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPlainResponses checks the answers to requests that are not
// WebSocket handshakes against net/http's for the same handler: status,
// headers, bodies, and no body where HTTP forbids one (204, 304). The
// intended differences: every answer of this backend ends the connection
// (Connection: close), and HEAD, like every method but GET, gets 405
// before the handler runs.
func TestPlainResponses(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/created":
			w.Header().Set("Location", "/thing")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"ok":true}`)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			io.WriteString(w, "dropped")
		case "/notmodified":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/html":
			io.WriteString(w, "<!DOCTYPE html><p>hi</p>")
		case "/split":
			w.Header().Set("X-A", "1")
			w.Header().Add("X-A", "2")
			io.WriteString(w, "one ")
			io.WriteString(w, "two")
		case "/query":
			io.WriteString(w, r.URL.Query().Get("q")+" "+r.Header.Get("X-Req"))
		default:
			http.NotFound(w, r)
		}
	})
	type answer struct {
		status int
		body   string
		header map[string]string
	}
	cases := []struct {
		path string
		want answer
	}{
		{"/created", answer{201, `{"ok":true}`, map[string]string{"Location": "/thing", "Content-Type": "text/plain; charset=utf-8"}}},
		{"/nocontent", answer{204, "", map[string]string{"Content-Length": ""}}},
		{"/notmodified", answer{304, "", map[string]string{"ETag": `"v1"`, "Content-Length": ""}}},
		{"/html", answer{200, "<!DOCTYPE html><p>hi</p>", map[string]string{"Content-Type": "text/html; charset=utf-8"}}},
		{"/split", answer{200, "one two", map[string]string{"Content-Length": "7"}}},
		{"/query?q=x%20y", answer{200, "x y z", nil}},
		{"/missing", answer{404, "404 page not found\n", nil}},
	}
	for _, b := range bothBackends(t, h, backendConfig{}) {
		for _, tc := range cases {
			c := dialRaw(t, b.addr)
			resp, body := c.roundTrip("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\nX-Req: z\r\n\r\n")
			if resp.StatusCode != tc.want.status || body != tc.want.body {
				t.Errorf("%s %s: %s %q, want %d %q", b.name, tc.path, resp.Status, body, tc.want.status, tc.want.body)
			}
			for k, v := range tc.want.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s %s: %s: %q, want %q", b.name, tc.path, k, got, v)
				}
			}
			if tc.path == "/split" && strings.Join(resp.Header.Values("X-A"), ",") != "1,2" {
				t.Errorf("%s: X-A %q", b.name, resp.Header.Values("X-A"))
			}
			if b.name != "net/http" {
				if !resp.Close {
					t.Errorf("%s %s: no Connection: close", b.name, tc.path)
				}
				c.expectEOF() // no bytes after the answer, a body on 204/304 included
			}
		}
		if b.name == "net/http" {
			continue
		}
		c := dialRaw(t, b.addr)
		resp, _ := c.roundTrip("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s HEAD: %s, Allow %q", b.name, resp.Status, resp.Header.Get("Allow"))
		}
	}
}
