// Package wsjson sends and receives JSON values as WebSocket messages, one
// value per message, over the blocking API of package websocket.
//
// Use it when each message of a protocol is one JSON document: Write
// marshals a value into one text message, Read unmarshals the next message
// into a value. Both borrow their buffers from pools, so a steady stream of
// messages costs no buffer allocations beyond what encoding/json itself
// makes. For other encodings, or to decode a large message as a stream, use
// the connection's NextReader and NextWriter directly.
//
// A message that is not valid JSON for the target (a syntax error, a type
// mismatch) makes Read return a *DecodeError and leaves the connection
// open: the message was received whole, so the stream is intact, and the
// caller decides whether to skip it, answer it, or end the connection. To
// end it as RFC 6455 suggests for data an endpoint cannot accept, close
// with websocket.StatusUnsupportedData:
//
//	var m Msg
//	err := wsjson.Read(ctx, c, &m)
//	var de *wsjson.DecodeError
//	if errors.As(err, &de) {
//		c.Close(websocket.StatusUnsupportedData, "expected a JSON message")
//	}
//
// Read accepts JSON in text and binary messages alike (some peers send
// JSON as binary); Write always sends text, since JSON is UTF-8 text
// (RFC 8259 §8.1).
//
// Like the connection's own methods, Write may be called from any number of
// goroutines, and Read from one at a time.
package wsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/wsdriver/websocket"
)

// maxPooled is the largest buffer returned to a pool. A larger one, left by
// an unusually big message, is dropped so that the pool does not keep the
// memory of the largest message ever seen.
const maxPooled = 64 << 10

// readBufs holds the buffers Read receives messages into.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// DecodeError reports a message that was received whole but could not be
// unmarshalled into the value given to Read. The connection is not closed:
// the next Read returns the next message. Err is encoding/json's error
// (such as a *json.SyntaxError or *json.UnmarshalTypeError), which errors.As
// also finds through a DecodeError.
type DecodeError struct {
	Type websocket.MessageType // the type of the message that did not decode
	Err  error
}

// Error describes the JSON error.
func (e *DecodeError) Error() string {
	return "wsjson: decoding " + e.Type.String() + " message: " + e.Err.Error()
}

// Unwrap returns the encoding/json error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Read reads the next data message of c and unmarshals it into v with
// encoding/json. Errors of the connection (a *websocket.CloseError once the
// peer closed, ctx.Err() when ctx ends before a message arrives) are
// returned as c.ReadMessage returns them; a message that does not unmarshal
// into v gives a *DecodeError and leaves the connection usable.
func Read(ctx context.Context, c *websocket.Conn, v any) error {
	bp := readBufs.Get().(*[]byte)
	typ, msg, err := c.ReadMessage(ctx, *bp)
	if err == nil {
		if jerr := json.Unmarshal(msg, v); jerr != nil {
			err = &DecodeError{Type: typ, Err: jerr}
		}
	}
	if cap(msg) <= maxPooled {
		*bp = msg[:0]
		readBufs.Put(bp)
	}
	return err
}

// encoder is a pooled buffer with a json.Encoder bound to it, so that
// neither is allocated per message.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// Write marshals v with encoding/json and sends it as one text message. The
// message holds exactly what json.Marshal returns (HTML characters escaped,
// no trailing newline). If v does not marshal, nothing is sent and the
// json error is returned; otherwise Write returns what c.Write does.
func Write(ctx context.Context, c *websocket.Conn, v any) error {
	e := encoders.Get().(*encoder)
	defer func() {
		if e.buf.Cap() <= maxPooled {
			e.buf.Reset()
			encoders.Put(e)
		}
	}()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	b := e.buf.Bytes()
	return c.Write(ctx, websocket.TextMessage, b[:len(b)-1]) // Encode ends the value with '\n'
}
