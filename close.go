package websocket

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// StatusCode is a close status code (RFC 6455 §7.4). Codes 1005, 1006 and
// 1015 are never sent on the wire; the library reports them to say that no
// code was received, that the connection dropped, or that TLS failed.
type StatusCode uint16

// Close status codes registered with IANA.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusReceived        StatusCode = 1005
	StatusAbnormalClosure         StatusCode = 1006
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusReceived:        "no status received",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid frame payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
}

// String returns the code with its IANA name, such as "1000 (normal closure)".
func (c StatusCode) String() string {
	if s, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + s + ")"
	}
	return strconv.Itoa(int(c))
}

// validOnWire reports whether c may appear in a close frame (RFC 6455
// §7.4.1 and §7.4.2, plus the IANA registry's 1012-1014). The library
// refuses to send other codes and fails the connection with 1002 when the
// peer sends one.
func (c StatusCode) validOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is the error a read returns once the closing handshake has
// happened: Code and Reason are those of the close frame the peer sent
// (StatusNoStatusReceived if it had no body), or StatusAbnormalClosure when
// the connection dropped without one. Test for it with errors.As or
// CloseStatus.
type CloseError struct {
	Code   StatusCode
	Reason string

	// err is the library's cause of a 1006 it decided on itself, such as
	// ErrWriteTimeout or ErrPongTimeout, so that errors.Is finds it.
	err error
}

// Unwrap returns the cause of a drop the library decided on (ErrWriteTimeout,
// ErrPongTimeout), or nil.
func (e *CloseError) Unwrap() error { return e.err }

// Error describes the close code and reason.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "websocket: closed: " + e.Code.String()
	}
	return fmt.Sprintf("websocket: closed: %v: %q", e.Code, e.Reason)
}

// CloseStatus returns the code of the *CloseError in err's chain, or 0 if
// there is none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// ProtocolError reports that the peer broke RFC 6455 or a configured limit.
// The library failed the connection by sending a close frame with Code
// (1002 for framing errors, 1007 for invalid UTF-8, 1009 for a message over
// the maximum length) and Reason.
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

// Error describes the violation and the close code it was answered with.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("websocket: protocol error: %s (closing with %v)", e.Reason, e.Code)
}

// ErrClosed is returned by operations on a connection that is closed or
// closing locally.
var ErrClosed = errors.New("websocket: use of closed connection")

// Errors of the frame decoder, each carrying the close code RFC 6455 asks for.
var (
	errLengthTopBit       = &ProtocolError{StatusProtocolError, "64-bit payload length has the most significant bit set"}
	errNonMinimalLength   = &ProtocolError{StatusProtocolError, "payload length not in its minimal encoding"}
	errReservedBits       = &ProtocolError{StatusProtocolError, "reserved bits set without a negotiated extension"}
	errReservedOpcode     = &ProtocolError{StatusProtocolError, "reserved opcode"}
	errFragmentedControl  = &ProtocolError{StatusProtocolError, "fragmented control frame"}
	errControlTooLong     = &ProtocolError{StatusProtocolError, "control frame payload longer than 125 bytes"}
	errUnmaskedClient     = &ProtocolError{StatusProtocolError, "client frame is not masked"}
	errMaskedServer       = &ProtocolError{StatusProtocolError, "server frame is masked"}
	errUnexpectedContinue = &ProtocolError{StatusProtocolError, "continuation frame without a message to continue"}
	errExpectedContinue   = &ProtocolError{StatusProtocolError, "new data frame while a fragmented message is open"}
	errInvalidUTF8        = &ProtocolError{StatusInvalidFramePayloadData, "text message is not valid UTF-8"}
	errTooBig             = &ProtocolError{StatusMessageTooBig, "message exceeds the maximum length"}
	errCloseOneByte       = &ProtocolError{StatusProtocolError, "close frame payload of 1 byte"}
	errCloseReasonUTF8    = &ProtocolError{StatusInvalidFramePayloadData, "close reason is not valid UTF-8"}
)

// parseClosePayload decodes a close frame body (RFC 6455 §5.5.1).
func parseClosePayload(p []byte) (StatusCode, string, error) {
	switch len(p) {
	case 0:
		return StatusNoStatusReceived, "", nil
	case 1:
		return 0, "", errCloseOneByte
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !code.validOnWire() {
		return 0, "", &ProtocolError{StatusProtocolError, "invalid close code " + strconv.Itoa(int(code))}
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", errCloseReasonUTF8
	}
	return code, string(p[2:]), nil
}

// appendClosePayload appends the body of a close frame. Code 1005 means an
// empty body, which is how a close without a code is echoed.
func appendClosePayload(dst []byte, code StatusCode, reason string) []byte {
	if code == StatusNoStatusReceived {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// checkCloseArgs validates what a caller asks to send in a close frame.
func checkCloseArgs(code StatusCode, reason string) error {
	if !code.validOnWire() {
		return fmt.Errorf("websocket: close code %d may not be sent", code)
	}
	if len(reason) > maxControlPayload-2 {
		return fmt.Errorf("websocket: close reason is %d bytes, the limit is %d", len(reason), maxControlPayload-2)
	}
	if !utf8.ValidString(reason) {
		return errors.New("websocket: close reason is not valid UTF-8")
	}
	return nil
}

// Close starts the closing handshake (RFC 6455 §7.1.2), as websocket-driver's
// close-connection: it sends a close frame with code and reason, then waits
// for the peer's close frame, at most the close timeout, and closes the TCP
// connection. With the event API (after Start) it returns once the frame is
// sent and the read loop finishes the handshake, so it may be called from a
// handler. Calling Close on a closed connection returns ErrClosed; while a
// handshake is under way it waits for it. Close before the connection
// opened (even while Start is dialing or answering the handshake, from
// another goroutine) ends it: Start then returns an error wrapping
// ErrClosed and the network connection is closed. If another goroutine's
// write is stuck on a peer that does not read, the close frame waits for it
// at most the write timeout (or the close timeout, if shorter); the
// connection is then dropped and Close returns ErrClosed.
func (c *Conn) Close(code StatusCode, reason string) error {
	if err := checkCloseArgs(code, reason); err != nil {
		return err
	}
	if c.ReadyState() == Connecting {
		// Never opened: there is no one to tell. If a Start is completing
		// the handshake right now, finish and its compare-and-swap decide:
		// either the new socket is closed and Start fails, or the open
		// connection is dropped.
		c.finish(&CloseError{Code: code, Reason: reason})
		return nil
	}
	if c.ReadyState() == Closed {
		return ErrClosed
	}
	c.closeMu.Lock()
	if c.closeSent {
		c.closeMu.Unlock()
		select {
		case <-c.doneChan():
			return ErrClosed
		default:
		}
		if !c.eventing.Load() {
			<-c.doneChan()
		}
		return nil
	}
	c.closeSent = true
	c.closeTimer = time.AfterFunc(c.closeTimeout, c.forceClose)
	c.closeMu.Unlock()
	c.state.CompareAndSwap(int32(Open), int32(Closing))

	var p [maxControlPayload]byte
	if err := c.writeControl(opClose, appendClosePayload(p[:0], code, reason)); err != nil {
		return err
	}
	if c.eventing.Load() {
		return nil
	}
	c.awaitClose()
	return nil
}

// awaitClose waits for the peer's close frame. If no goroutine is reading,
// it reads (and drops) whatever comes first; otherwise the reader handles
// the close frame. Either way the close timer bounds the wait.
func (c *Conn) awaitClose() {
	if c.acquire(context.Background(), &c.readSem) == nil {
		for {
			if _, err := c.readEvent(context.Background()); err != nil {
				break
			}
		}
		c.readSem.release()
	}
	<-c.doneChan()
}

// forceClose runs when the closing handshake took longer than the close
// timeout. If the peer's close frame did arrive, the reader is only waiting
// for TCP to go down: cutting it lets the reader finish with the peer's code.
func (c *Conn) forceClose() {
	c.closeMu.Lock()
	received := c.closeRecv
	c.closeMu.Unlock()
	if received {
		c.closeSocket()
		return
	}
	c.finish(&CloseError{Code: StatusAbnormalClosure, Reason: "closing handshake timed out"})
}

// CloseNow closes the TCP connection at once, without the closing
// handshake. Reads then report StatusAbnormalClosure.
func (c *Conn) CloseNow() error {
	select {
	case <-c.doneChan():
		return ErrClosed
	default:
	}
	c.finish(&CloseError{Code: StatusAbnormalClosure, Reason: "closed locally without handshake"})
	return nil
}
