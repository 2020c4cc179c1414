package websocket

import (
	"bytes"
	"net/http"
	"testing"
)

// TestKeptMessageDataIsOwned keeps the Data of a message received on one
// connection and then runs traffic on another. By default Data belongs to
// the handler, so what it kept must not change; before, it aliased pooled
// read buffers that the other connection's reads then filled.
func TestKeptMessageDataIsOwned(t *testing.T) {
	for _, size := range []int{100, 6000, 40000} {
		t.Run(sizeName(size), func(t *testing.T) { testKeptMessageData(t, size, nil) })
	}
	// A fragmented message is assembled in a pooled buffer first.
	t.Run("fragmented", func(t *testing.T) {
		testKeptMessageData(t, 3000, func(c *Conn, p []byte) error {
			w, err := c.NextWriter(testContext(t), BinaryMessage)
			if err != nil {
				return err
			}
			for len(p) > 0 {
				n := min(len(p), 700)
				if _, err := w.Write(p[:n]); err != nil {
					return err
				}
				p = p[n:]
			}
			return w.Close()
		})
	})
}

func testKeptMessageData(t *testing.T, size int, send func(*Conn, []byte) error) {
	if send == nil {
		send = func(c *Conn, p []byte) error { return c.Write(testContext(t), BinaryMessage, p) }
	}
	kept := make(chan []byte, 1)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, nil)
		keep := r.URL.Path == "/a"
		ws.OnMessage(func(m Message) {
			if keep {
				kept <- m.Data // kept after the handler returns
				return
			}
			ws.Write(testContext(t), m.Type, m.Data)
		})
		ws.Start()
	})
	a := dialTest(t, url+"/a", nil)
	b := dialTest(t, url+"/b", nil)

	want := bytes.Repeat([]byte("A"), size)
	if err := send(a, want); err != nil {
		t.Fatal(err)
	}
	got := wait(t, kept, "conn A's message")
	if !bytes.Equal(got, want) {
		t.Fatalf("kept data is wrong at once")
	}

	ctx := testContext(t)
	other := bytes.Repeat([]byte("B"), size)
	buf := make([]byte, 0, size)
	for i := 0; i < 200; i++ {
		if err := send(b, other); err != nil {
			t.Fatal(err)
		}
		var err error
		if _, buf, err = b.ReadMessage(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		i := bytes.IndexFunc(got, func(r rune) bool { return r != 'A' })
		t.Fatalf("conn A's kept data changed after traffic on conn B: byte %d is %q", i, got[i])
	}
	if cap(got) != len(got) {
		t.Errorf("kept data has capacity %d for %d bytes, want an exactly sized slice", cap(got), len(got))
	}
}
