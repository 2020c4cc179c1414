package websocket

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file holds the Sec-WebSocket-Extensions grammar (RFC 6455 §9.1) and the
// permessage-deflate negotiation (RFC 7692 §5 and §7.1) for both sides. It does
// no I/O: the handshake code hands it header values and gets back the agreed
// parameters and the response header value.

// extParam is one extension parameter. hasValue distinguishes "a" from "a=…";
// a quoted value is stored unquoted.
type extParam struct {
	name     string
	value    string
	hasValue bool
}

// extOffer is one element of a Sec-WebSocket-Extensions list: an extension
// name with its parameters, in header order.
type extOffer struct {
	name   string
	params []extParam
}

// extErrSyntax marks a header value that does not follow RFC 6455 §9.1.
var extErrSyntax = errors.New("websocket: malformed Sec-WebSocket-Extensions")

// extIsTokenChar reports whether c is an RFC 7230 §3.2.6 tchar.
func extIsTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func extIsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !extIsTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// extParser walks one header value. Errors carry the byte offset so that a
// peer's malformed header can be diagnosed from the log line alone.
type extParser struct {
	s   string
	pos int
}

func (p *extParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d in %q", extErrSyntax, what, p.pos, p.s)
}

// skipOWS skips RFC 7230 OWS (spaces and tabs).
func (p *extParser) skipOWS() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *extParser) token() string {
	start := p.pos
	for p.pos < len(p.s) && extIsTokenChar(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

// quoted parses an RFC 7230 quoted-string starting at the opening quote and
// returns it unquoted.
func (p *extParser) quoted() (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\':
			p.pos++
			if p.pos >= len(p.s) {
				return "", p.fail("unterminated quoted-pair")
			}
			q := p.s[p.pos]
			if q != '\t' && (q < 0x20 || q == 0x7f) {
				return "", p.fail("invalid quoted-pair")
			}
			b.WriteByte(q)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b.WriteByte(c)
		default:
			return "", p.fail("invalid character in quoted-string")
		}
		p.pos++
	}
	return "", p.fail("unterminated quoted-string")
}

// extParseHeader parses every Sec-WebSocket-Extensions header line into the
// list of extensions in order. Empty list elements (", ,") are skipped as
// RFC 7230 §7 asks of recipients. Any other deviation from the grammar is an
// error wrapping extErrSyntax.
func extParseHeader(values []string) ([]extOffer, error) {
	var offers []extOffer
	for _, v := range values {
		p := &extParser{s: v}
		for {
			p.skipOWS()
			if p.pos == len(p.s) {
				break
			}
			if p.s[p.pos] == ',' {
				p.pos++
				continue
			}
			off, err := p.extension()
			if err != nil {
				return nil, err
			}
			offers = append(offers, off)
			p.skipOWS()
			if p.pos == len(p.s) {
				break
			}
			if p.s[p.pos] != ',' {
				return nil, p.fail("expected ',' or ';'")
			}
			p.pos++
		}
	}
	return offers, nil
}

func (p *extParser) extension() (extOffer, error) {
	name := p.token()
	if name == "" {
		return extOffer{}, p.fail("expected extension name")
	}
	off := extOffer{name: name}
	for {
		p.skipOWS()
		if p.pos == len(p.s) || p.s[p.pos] != ';' {
			return off, nil
		}
		p.pos++
		p.skipOWS()
		par := extParam{name: p.token()}
		if par.name == "" {
			return extOffer{}, p.fail("expected parameter name")
		}
		p.skipOWS()
		if p.pos < len(p.s) && p.s[p.pos] == '=' {
			p.pos++
			p.skipOWS()
			par.hasValue = true
			if p.pos < len(p.s) && p.s[p.pos] == '"' {
				start := p.pos
				v, err := p.quoted()
				if err != nil {
					return extOffer{}, err
				}
				// RFC 6455 §9.1: a quoted value must be a token once unquoted.
				if !extIsToken(v) {
					p.pos = start
					return extOffer{}, p.fail("quoted value is not a token")
				}
				par.value = v
			} else {
				par.value = p.token()
				if par.value == "" {
					return extOffer{}, p.fail("expected parameter value")
				}
			}
		}
		off.params = append(off.params, par)
	}
}

// extFormat serialises offers back into one header value. Values are written
// as bare tokens, which the parser guarantees they are.
func extFormat(offers []extOffer) string {
	var b strings.Builder
	for i, o := range offers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(o.name)
		for _, p := range o.params {
			b.WriteString("; ")
			b.WriteString(p.name)
			if p.hasValue {
				b.WriteByte('=')
				b.WriteString(p.value)
			}
		}
	}
	return b.String()
}

// The permessage-deflate extension name and parameter names (RFC 7692 §7).
const (
	deflateExtName                 = "permessage-deflate"
	deflateServerNoContextTakeover = "server_no_context_takeover"
	deflateClientNoContextTakeover = "client_no_context_takeover"
	deflateServerMaxWindowBits     = "server_max_window_bits"
	deflateClientMaxWindowBits     = "client_max_window_bits"
)

// deflateErrParams marks a permessage-deflate element whose parameters break
// RFC 7692 §7 (unknown, duplicated, bad value).
var deflateErrParams = errors.New("websocket: invalid permessage-deflate parameters")

// deflateParams is one permessage-deflate configuration, as offered or as
// agreed. Window bits of 0 mean the parameter is absent.
type deflateParams struct {
	serverNoContextTakeover bool
	clientNoContextTakeover bool
	serverMaxWindowBits     int
	clientMaxWindowBits     int
	// clientMaxWindowBitsNoValue records "client_max_window_bits" given
	// without a value, which is only legal in an offer.
	clientMaxWindowBitsNoValue bool
}

// deflateParseWindowBits accepts only the RFC 7692 §7.1.2 form: a decimal
// integer from 8 to 15 without leading zeros.
func deflateParseWindowBits(v string) (int, bool) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	if n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// deflateParseParams validates the parameters of one permessage-deflate
// element. inOffer selects the offer rules (client_max_window_bits may lack a
// value) rather than the response rules (it must have one).
func deflateParseParams(params []extParam, inOffer bool) (deflateParams, error) {
	var dp deflateParams
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		name := strings.ToLower(p.name)
		if seen[name] {
			return deflateParams{}, fmt.Errorf("%w: duplicate %s", deflateErrParams, p.name)
		}
		seen[name] = true
		switch name {
		case deflateServerNoContextTakeover, deflateClientNoContextTakeover:
			if p.hasValue {
				return deflateParams{}, fmt.Errorf("%w: %s takes no value", deflateErrParams, p.name)
			}
			if name == deflateServerNoContextTakeover {
				dp.serverNoContextTakeover = true
			} else {
				dp.clientNoContextTakeover = true
			}
		case deflateServerMaxWindowBits:
			bits, ok := deflateParseWindowBits(p.value)
			if !p.hasValue || !ok {
				return deflateParams{}, fmt.Errorf("%w: %s=%q", deflateErrParams, p.name, p.value)
			}
			dp.serverMaxWindowBits = bits
		case deflateClientMaxWindowBits:
			if !p.hasValue {
				if !inOffer {
					return deflateParams{}, fmt.Errorf("%w: %s needs a value in a response", deflateErrParams, p.name)
				}
				dp.clientMaxWindowBitsNoValue = true
				continue
			}
			bits, ok := deflateParseWindowBits(p.value)
			if !ok {
				return deflateParams{}, fmt.Errorf("%w: %s=%q", deflateErrParams, p.name, p.value)
			}
			dp.clientMaxWindowBits = bits
		default:
			return deflateParams{}, fmt.Errorf("%w: unknown parameter %s", deflateErrParams, p.name)
		}
	}
	return dp, nil
}

// format renders dp as a permessage-deflate element.
func (dp deflateParams) format() string {
	var b strings.Builder
	b.WriteString(deflateExtName)
	if dp.serverNoContextTakeover {
		b.WriteString("; " + deflateServerNoContextTakeover)
	}
	if dp.clientNoContextTakeover {
		b.WriteString("; " + deflateClientNoContextTakeover)
	}
	if dp.serverMaxWindowBits != 0 {
		b.WriteString("; " + deflateServerMaxWindowBits + "=" + strconv.Itoa(dp.serverMaxWindowBits))
	}
	if dp.clientMaxWindowBits != 0 {
		b.WriteString("; " + deflateClientMaxWindowBits + "=" + strconv.Itoa(dp.clientMaxWindowBits))
	} else if dp.clientMaxWindowBitsNoValue {
		b.WriteString("; " + deflateClientMaxWindowBits)
	}
	return b.String()
}

// deflateNegotiateServer picks the first permessage-deflate offer the server
// can accept from the client's Sec-WebSocket-Extensions values.
//
// ok is false when compression is off (opts == nil) or no offer was
// acceptable; the connection then proceeds uncompressed and no
// Sec-WebSocket-Extensions header is sent. An offer with invalid parameters
// is declined, not fatal: RFC 7692 §5 says "A server MUST decline an
// extension negotiation offer for this extension" when it has unknown,
// invalid or duplicated parameters, and §5 lets a client send several offers
// precisely so that a later one can be taken instead. err is non-nil only when
// compression is on and the header itself breaks the RFC 6455 §9.1 grammar;
// the handshake code should then answer 400 Bad Request (RFC 6455 §4.2.1: a
// handshake that does not match the description gets an error response),
// since no offer can be read reliably.
//
// Every valid offer can be honoured (see messageCompressor for how a
// server_max_window_bits below 15 is met with Go's 32 KiB-window deflater),
// so declining only happens for invalid parameters.
func deflateNegotiateServer(headerValues []string, opts *CompressionOptions) (params deflateParams, responseHeaderValue string, ok bool, err error) {
	if opts == nil {
		// Compression off: the header is not ours to judge.
		return deflateParams{}, "", false, nil
	}
	offers, err := extParseHeader(headerValues)
	if err != nil {
		return deflateParams{}, "", false, err
	}
	for _, off := range offers {
		if !strings.EqualFold(off.name, deflateExtName) {
			continue
		}
		offered, perr := deflateParseParams(off.params, true)
		if perr != nil {
			continue // RFC 7692 §5: decline this offer, try the next one.
		}
		var agreed deflateParams
		// RFC 7692 §7.1.1.1: a request for server_no_context_takeover is
		// accepted by echoing it; the server may also add it unasked.
		agreed.serverNoContextTakeover = offered.serverNoContextTakeover || opts.NoContextTakeover
		// RFC 7692 §7.1.1.2: the server may add client_no_context_takeover
		// whether or not it was offered. An offered one is echoed: it costs
		// us nothing (the client just resets its window), and some clients
		// (gorilla/websocket) refuse a response that drops it.
		agreed.clientNoContextTakeover = offered.clientNoContextTakeover || opts.NoContextTakeover
		// RFC 7692 §7.1.2.1: answer with the same or a smaller value than
		// offered; without an offered value the server may still limit
		// itself.
		agreed.serverMaxWindowBits = deflateMinBits(offered.serverMaxWindowBits, deflateOptBits(opts.ServerMaxWindowBits))
		// RFC 7692 §7.1.2.2: client_max_window_bits may appear in the
		// response only when offered; it then limits the client. The
		// offered value is what the client will use anyway, so ask for
		// less only.
		if offered.clientMaxWindowBits != 0 || offered.clientMaxWindowBitsNoValue {
			want := deflateOptBits(opts.ClientMaxWindowBits)
			if want != 0 && (offered.clientMaxWindowBits == 0 || want < offered.clientMaxWindowBits) {
				agreed.clientMaxWindowBits = want
			}
		}
		return agreed, agreed.format(), true, nil
	}
	return deflateParams{}, "", false, nil
}

// deflateOptBits turns an option value into a parameter value: 0 and 15
// (the RFC default) need no parameter, out-of-range values are clamped.
func deflateOptBits(bits int) int {
	switch {
	case bits <= 0 || bits >= 15:
		return 0
	case bits < 8:
		return 8
	}
	return bits
}

// deflateMinBits returns the smaller limit, where 0 means no limit.
func deflateMinBits(a, b int) int {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// deflateClientOffer returns the Sec-WebSocket-Extensions value a client
// sends, or "" when compression is off. client_max_window_bits is always
// offered because any limit the server picks can be honoured.
func deflateClientOffer(opts *CompressionOptions) string {
	if opts == nil {
		return ""
	}
	return deflateOfferParams(opts).format()
}

// deflateOfferParams is the single offer a client with opts makes.
func deflateOfferParams(opts *CompressionOptions) deflateParams {
	return deflateParams{
		serverNoContextTakeover:    opts.NoContextTakeover,
		clientNoContextTakeover:    opts.NoContextTakeover,
		serverMaxWindowBits:        deflateOptBits(opts.ServerMaxWindowBits),
		clientMaxWindowBits:        deflateOptBits(opts.ClientMaxWindowBits),
		clientMaxWindowBitsNoValue: true,
	}
}

// deflateAcceptResponse validates the server's Sec-WebSocket-Extensions
// values against what deflateClientOffer(opts) sent. ok is false when the
// server declined compression. A non-nil error means the client must fail
// the connection (RFC 6455 §4.1, RFC 7692 §5.1); the handshake code turns it
// into a failed handshake.
func deflateAcceptResponse(opts *CompressionOptions, responseHeaderValues []string) (params deflateParams, ok bool, err error) {
	if opts == nil {
		return deflateCheckResponse(nil, responseHeaderValues)
	}
	offered := deflateOfferParams(opts)
	return deflateCheckResponse(&offered, responseHeaderValues)
}

// deflateCheckResponse validates a response against the offer that was made
// (nil: none).
func deflateCheckResponse(offered *deflateParams, responseHeaderValues []string) (params deflateParams, ok bool, err error) {
	exts, err := extParseHeader(responseHeaderValues)
	if err != nil {
		return deflateParams{}, false, err
	}
	if len(exts) == 0 {
		return deflateParams{}, false, nil
	}
	for _, e := range exts {
		// RFC 6455 §4.1: an extension the client did not ask for fails
		// the connection.
		if offered == nil || !strings.EqualFold(e.name, deflateExtName) {
			return deflateParams{}, false, fmt.Errorf("websocket: server accepted extension %q that was not offered", e.name)
		}
	}
	// RFC 7692 §5: the server accepts at most one offer, and we made one.
	if len(exts) > 1 {
		return deflateParams{}, false, fmt.Errorf("%w: %d permessage-deflate elements in response", deflateErrParams, len(exts))
	}
	got, err := deflateParseParams(exts[0].params, false)
	if err != nil {
		return deflateParams{}, false, err // RFC 7692 §5.1
	}
	// RFC 7692 §7.1.2.2: client_max_window_bits only in answer to ours.
	if got.clientMaxWindowBits != 0 && offered.clientMaxWindowBits == 0 && !offered.clientMaxWindowBitsNoValue {
		return deflateParams{}, false, fmt.Errorf("%w: client_max_window_bits was not offered", deflateErrParams)
	}
	// RFC 7692 §7.1.2.1: the server may only lower a limit we offered.
	if offered.serverMaxWindowBits != 0 && (got.serverMaxWindowBits == 0 || got.serverMaxWindowBits > offered.serverMaxWindowBits) {
		return deflateParams{}, false, fmt.Errorf("%w: server_max_window_bits %d, offered %d", deflateErrParams, got.serverMaxWindowBits, offered.serverMaxWindowBits)
	}
	// A missing server_no_context_takeover that we asked for is tolerated:
	// our decompressor keeps the window either way, which is correct
	// whether or not the server resets its own.
	return got, true, nil
}
