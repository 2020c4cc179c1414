package websocket

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// recordHandler is a slog.Handler that passes each record on a channel.
type recordHandler struct{ records chan slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.records <- r.Clone():
	default: // a test reads only the records it expects
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestHandlerPanic makes OnMessage panic on one connection: that connection
// is closed with 1011 and its OnClose runs once, the panic is logged with
// its value, and another connection of the same server goes on working.
func TestHandlerPanic(t *testing.T) {
	records := make(chan slog.Record, 64)
	logger := slog.New(recordHandler{records})
	var closes atomic.Int32
	closed := make(chan StatusCode, 4)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, &ServerOptions{Logger: logger})
		ws.OnMessage(func(m Message) {
			if m.Text() == "boom" {
				panic(fmt.Sprintf("handler exploded on %s", m.Text()))
			}
			ws.Write(context.Background(), m.Type, m.Data)
		})
		ws.OnClose(func(code StatusCode, reason string) {
			closes.Add(1)
			closed <- code
		})
		ws.Start()
	})
	ctx := testContext(t)
	victim := dialTest(t, url, nil)
	other := dialTest(t, url, nil)

	if err := victim.Write(ctx, TextMessage, []byte("boom")); err != nil {
		t.Fatal(err)
	}
	_, _, err := victim.Read(ctx)
	if CloseStatus(err) != StatusInternalError {
		t.Fatalf("victim's read = %v, want a close with 1011", err)
	}
	if code := wait(t, closed, "the server's OnClose"); code != StatusInternalError {
		// The peer echoes the 1011 the server sent.
		t.Errorf("OnClose code = %v, want 1011", code)
	}

	rec := wait(t, records, "the panic's log record")
	if rec.Level != slog.LevelError {
		t.Errorf("log level = %v, want error", rec.Level)
	}
	attrs := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if attrs["panic"] != "handler exploded on boom" || attrs["handler"] != "OnMessage" {
		t.Errorf("log record attrs = %v, want the panic value and the handler", attrs)
	}
	if !strings.Contains(attrs["stack"], "TestHandlerPanic") {
		t.Errorf("log record stack does not show the handler:\n%s", attrs["stack"])
	}

	// The other connection lives.
	if err := other.Write(ctx, TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := other.Read(ctx); err != nil || string(msg) != "still here" {
		t.Fatalf("other connection's echo = %q, %v", msg, err)
	}
	other.Close(StatusNormalClosure, "")
	wait(t, closed, "the other connection's OnClose")
	if n := closes.Load(); n != 2 {
		t.Errorf("OnClose ran %d times for two connections, want 2", n)
	}
}

// TestHandlerPanicOnOpenAndClose checks the other handlers: a panic in
// OnOpen closes with 1011 too, and one in OnClose is only logged.
func TestHandlerPanicOnOpenAndClose(t *testing.T) {
	records := make(chan slog.Record, 64)
	logger := slog.New(recordHandler{records})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, &ServerOptions{Logger: logger})
		ws.OnOpen(func() { panic("open failed") })
		ws.OnClose(func(StatusCode, string) { panic("close failed") })
		ws.Start()
	})
	c := dialTest(t, url, nil)
	if _, _, err := c.Read(testContext(t)); CloseStatus(err) != StatusInternalError {
		t.Fatalf("read = %v, want a close with 1011", err)
	}
	for _, want := range []string{"open failed", "close failed"} {
		rec := wait(t, records, "the log record of "+want)
		var got string
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "panic" {
				got = a.Value.String()
			}
			return true
		})
		if got != want {
			t.Errorf("logged panic %q, want %q", got, want)
		}
	}
}

// TestLoggerProtocolFailure checks the debug record of a connection failed
// for breaking the protocol, sent to the options' Logger.
func TestLoggerProtocolFailure(t *testing.T) {
	records := make(chan slog.Record, 64)
	logger := slog.New(recordHandler{records})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		ws := NewServer(w, r, &ServerOptions{Logger: logger})
		ws.Start()
	})
	nc := rawClient(t, url)
	defer nc.Close()
	frame := clientFrame(true, 0, opText, []byte("hi"))
	frame[1] &^= 0x80 // unmasked: a client must mask
	nc.Write(frame)
	if code := readCloseCode(t, nc); code != StatusProtocolError {
		t.Fatalf("close code = %v, want 1002", code)
	}
	rec := wait(t, records, "the debug record")
	if rec.Level != slog.LevelDebug || !strings.Contains(rec.Message, "broke the protocol") {
		t.Errorf("record = %v %q, want the protocol failure at debug level", rec.Level, rec.Message)
	}
}
