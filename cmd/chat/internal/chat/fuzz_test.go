package chat

import (
	"strings"
	"testing"
	"time"
)

// FuzzReceive feeds arbitrary client messages to a plain and a JSON client:
// nothing a peer sends may panic the hub, and every message gets an answer
// or a broadcast without wedging the room.
func FuzzReceive(f *testing.F) {
	for _, s := range []string{"hello", "", "/nick", "/nick ann", "/me", "/join x", "/join ../../etc", "//x", "/who", "/rooms", "/help", "/zz",
		`{"type":"message","text":"hi"}`, `{"type":"message","text":"/nick bob"}`, `{"type":"rooms"}`, `{"type":"who"}`,
		`{"type":1}`, `{"text":null}`, `[`, `{"type":"message","text":"\u0000"}`, "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h := NewHub(Config{MaxMessage: 64, History: 5, Store: NewMemStore(5)})
		p := newFake()
		pc, err := h.Connect(p, ConnectOptions{Nick: "p"})
		if err != nil {
			t.Fatal(err)
		}
		p.client <- pc
		j := newFake()
		jc, err := h.Connect(j, ConnectOptions{Nick: "j", JSON: true})
		if err != nil {
			t.Fatal(err)
		}
		j.client <- jc
		pc.Receive(data)
		jc.Receive(data)
		pc.ReceiveBinary()
		// The room still works afterwards.
		pc.Receive([]byte("//still here"))
		deadline := time.After(5 * time.Second)
		for {
			select {
			case m := <-p.msgs:
				if strings.HasSuffix(m, ": /still here") {
					pc.Disconnected()
					jc.Disconnected()
					return
				}
			case <-deadline:
				t.Fatal("room wedged")
			}
		}
	})
}
