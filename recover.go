package websocket

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// Handler panics. A panic in an event handler must not take the process,
// and every other connection, down with it: each handler call recovers,
// the panic is logged with its stack, and only the connection whose
// handler panicked is closed, with 1011 (internal error). The deferred
// recover costs nothing measurable and allocates nothing when no panic
// happens.

// log returns the connection's logger: the options' Logger, or
// slog.Default() at the time of the call.
func (c *Conn) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

// debugEnabled reports whether debug records would be logged: callers
// check it before building a record's arguments, so that a disabled level
// costs nothing.
func (c *Conn) debugEnabled() bool {
	return c.log().Enabled(context.Background(), slog.LevelDebug)
}

// logDebug logs a diagnostic at debug level.
func (c *Conn) logDebug(msg string, args ...any) {
	if c.debugEnabled() {
		c.log().Debug(msg, args...)
	}
}

// recoverHandler is deferred around each handler call. It recovers a panic,
// logs it, and closes the connection with 1011, except for the handlers
// that run while the connection is already closing (OnError, OnClose).
func (c *Conn) recoverHandler(handler string) {
	r := recover()
	if r == nil {
		return
	}
	c.log().Error("websocket: event handler panicked; closing the connection with 1011",
		"handler", handler, "panic", r, "remote", c.openNetConnAddr(), "stack", string(debug.Stack()))
	switch handler {
	case "OnError", "OnClose":
		return // the connection is already ending
	}
	if c.eventing.Load() {
		// The event loop finishes the closing handshake once the handler
		// returns, so Close only sends the frame.
		c.Close(StatusInternalError, "internal error")
		return
	}
	// OnPing and OnPong run on a blocking-API reader, and Close would
	// wait for that very reader: close from elsewhere. The reader (or the
	// close timeout) completes the handshake.
	go c.Close(StatusInternalError, "internal error")
}

// openNetConnAddr is the peer's address for a log record, or "" before
// the connection opened.
func (c *Conn) openNetConnAddr() string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// The calls of each handler, each recovering a panic. They are small
// methods rather than one taking a closure so that calling a handler
// allocates nothing.

func (c *Conn) callOpen(fn func()) {
	defer c.recoverHandler("OnOpen")
	fn()
}

func (c *Conn) deliverMessage(fn func(Message), m Message) {
	if fn == nil {
		return
	}
	defer c.recoverHandler("OnMessage")
	fn(m)
}

func (c *Conn) callClose(fn func(StatusCode, string), code StatusCode, reason string) {
	defer c.recoverHandler("OnClose")
	fn(code, reason)
}

func (c *Conn) callBytes(handler string, fn func([]byte), p []byte) {
	defer c.recoverHandler(handler)
	fn(p)
}

func (c *Conn) callError(fn func(error), err error) {
	defer c.recoverHandler("OnError")
	fn(err)
}

// firePing calls OnPing, if set, with a received ping's payload.
func (c *Conn) firePing(p []byte) {
	c.events.mu.Lock()
	fn := c.events.ping
	c.events.mu.Unlock()
	if fn != nil {
		c.callBytes("OnPing", fn, p)
	}
}

// firePong calls OnPong, if set, with a received pong's payload.
func (c *Conn) firePong(p []byte) {
	c.events.mu.Lock()
	fn := c.events.pong
	c.events.mu.Unlock()
	if fn != nil {
		c.callBytes("OnPong", fn, p)
	}
}

// fireError calls OnError, if set, with the error that failed the
// connection.
func (c *Conn) fireError(err error) {
	c.events.mu.Lock()
	fn := c.events.err
	c.events.mu.Unlock()
	if fn != nil {
		c.callError(fn, err)
	}
}
