package websocket

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestExtParseHeader(t *testing.T) {
	p := func(name, value string, has bool) extParam { return extParam{name: name, value: value, hasValue: has} }
	tests := []struct {
		name   string
		values []string
		want   []extOffer
	}{
		{"empty", nil, nil},
		{"blank line", []string{"  "}, nil},
		{"bare", []string{"permessage-deflate"}, []extOffer{{name: "permessage-deflate"}}},
		{"params", []string{"permessage-deflate; client_max_window_bits; server_max_window_bits=10"},
			[]extOffer{{name: "permessage-deflate", params: []extParam{p("client_max_window_bits", "", false), p("server_max_window_bits", "10", true)}}}},
		{"no spaces", []string{"a;b=1;c"}, []extOffer{{name: "a", params: []extParam{p("b", "1", true), p("c", "", false)}}}},
		{"ows everywhere", []string{" \ta \t; \tb \t= \t1 \t, \tc\t "},
			[]extOffer{{name: "a", params: []extParam{p("b", "1", true)}}, {name: "c"}}},
		{"quoted token", []string{`x; y="10"`}, []extOffer{{name: "x", params: []extParam{p("y", "10", true)}}}},
		{"quoted pair", []string{`x; y="a\b"`}, []extOffer{{name: "x", params: []extParam{p("y", "ab", true)}}}},
		{"several offers", []string{"permessage-deflate; server_no_context_takeover, permessage-deflate"},
			[]extOffer{{name: "permessage-deflate", params: []extParam{p("server_no_context_takeover", "", false)}}, {name: "permessage-deflate"}}},
		{"several lines", []string{"a", "b; c", ""}, []extOffer{{name: "a"}, {name: "b", params: []extParam{p("c", "", false)}}}},
		{"empty elements", []string{", a ,, b,"}, []extOffer{{name: "a"}, {name: "b"}}},
		{"token chars", []string{"!#$%&'*+-.^_`|~09AZaz"}, []extOffer{{name: "!#$%&'*+-.^_`|~09AZaz"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extParseHeader(tt.values)
			if err != nil {
				t.Fatalf("extParseHeader(%q): %v", tt.values, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("extParseHeader(%q) = %#v, want %#v", tt.values, got, tt.want)
			}
		})
	}
}

func TestExtParseHeaderErrors(t *testing.T) {
	bad := []string{
		";",
		"a;",
		"a; ;b",
		"a;=1",
		"a; b=",
		"a; b= ;c",
		"a b",
		"a; b c",
		"a; b=1 2",
		`a; b=""`,
		`a; b="1 2"`,
		`a; b="x,y"`,
		`a; b="unterminated`,
		`a; b="esc\`,
		"a; b=\"x\x01\"",
		"a; b=\"x\\\x01\"",
		`a; "b"=1`,
		`"a"`,
		"a=1",
		"a; b=c=d",
		"a; b=1; ",
		"a\x00",
		"a@b",
		"a; b=(c)",
		"a;b=1,;",
		"é",
	}
	for _, v := range bad {
		offers, err := extParseHeader([]string{"ok", v})
		if !errors.Is(err, extErrSyntax) {
			t.Errorf("extParseHeader(%q) = %v, %v; want extErrSyntax", v, offers, err)
		}
	}
}

func TestExtFormatRoundTrip(t *testing.T) {
	in := []string{`a; b="c"; d, e;f=9`, "g"}
	offers, err := extParseHeader(in)
	if err != nil {
		t.Fatal(err)
	}
	s := extFormat(offers)
	if s != "a; b=c; d, e; f=9, g" {
		t.Fatalf("extFormat = %q", s)
	}
	again, err := extParseHeader([]string{s})
	if err != nil || !reflect.DeepEqual(again, offers) {
		t.Fatalf("re-parse = %#v, %v; want %#v", again, err, offers)
	}
}

func TestDeflateParseParams(t *testing.T) {
	tests := []struct {
		header  string
		inOffer bool
		want    deflateParams
		wantErr bool
	}{
		{"permessage-deflate", true, deflateParams{}, false},
		{"permessage-deflate; server_no_context_takeover", true, deflateParams{serverNoContextTakeover: true}, false},
		{"permessage-deflate; client_no_context_takeover", false, deflateParams{clientNoContextTakeover: true}, false},
		{"permessage-deflate; server_max_window_bits=8", true, deflateParams{serverMaxWindowBits: 8}, false},
		{"permessage-deflate; server_max_window_bits=15", false, deflateParams{serverMaxWindowBits: 15}, false},
		{`permessage-deflate; server_max_window_bits="12"`, true, deflateParams{serverMaxWindowBits: 12}, false},
		{"permessage-deflate; client_max_window_bits", true, deflateParams{clientMaxWindowBitsNoValue: true}, false},
		{"permessage-deflate; client_max_window_bits=9", true, deflateParams{clientMaxWindowBits: 9}, false},
		{"permessage-deflate; client_max_window_bits=9", false, deflateParams{clientMaxWindowBits: 9}, false},
		{"permessage-deflate; Server_No_Context_Takeover", true, deflateParams{serverNoContextTakeover: true}, false},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11", true,
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11}, false},

		{"permessage-deflate; client_max_window_bits", false, deflateParams{}, true},
		{"permessage-deflate; unknown", true, deflateParams{}, true},
		{"permessage-deflate; unknown=1", false, deflateParams{}, true},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", true, deflateParams{}, true},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits=10", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=10; SERVER_MAX_WINDOW_BITS=11", true, deflateParams{}, true},
		{"permessage-deflate; server_no_context_takeover=1", true, deflateParams{}, true},
		{"permessage-deflate; client_no_context_takeover=true", false, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=7", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=16", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=010", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=09", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=+9", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=0x9", true, deflateParams{}, true},
		{"permessage-deflate; server_max_window_bits=100", true, deflateParams{}, true},
		{"permessage-deflate; client_max_window_bits=0", true, deflateParams{}, true},
		{"permessage-deflate; client_max_window_bits=abc", false, deflateParams{}, true},
	}
	for _, tt := range tests {
		offers, err := extParseHeader([]string{tt.header})
		if err != nil || len(offers) != 1 {
			t.Fatalf("%q: %v %v", tt.header, offers, err)
		}
		got, err := deflateParseParams(offers[0].params, tt.inOffer)
		if tt.wantErr {
			if !errors.Is(err, deflateErrParams) {
				t.Errorf("%q (offer %v): got %+v, %v; want deflateErrParams", tt.header, tt.inOffer, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q (offer %v) = %+v, %v; want %+v", tt.header, tt.inOffer, got, err, tt.want)
		}
	}
}

func TestDeflateNegotiateServer(t *testing.T) {
	on := &CompressionOptions{}
	tests := []struct {
		name    string
		values  []string
		opts    *CompressionOptions
		ok      bool
		resp    string
		want    deflateParams
		wantErr bool
	}{
		{"off", []string{"permessage-deflate"}, nil, false, "", deflateParams{}, false},
		{"not offered", nil, on, false, "", deflateParams{}, false},
		{"other extension only", []string{"x-foo; bar"}, on, false, "", deflateParams{}, false},
		{"plain", []string{"permessage-deflate"}, on, true, "permessage-deflate", deflateParams{}, false},
		{"case-insensitive name", []string{"PerMessage-Deflate"}, on, true, "permessage-deflate", deflateParams{}, false},
		{"after unknown extension", []string{"x-foo, permessage-deflate"}, on, true, "permessage-deflate", deflateParams{}, false},
		{"server_no_context_takeover echoed", []string{"permessage-deflate; server_no_context_takeover"}, on, true,
			"permessage-deflate; server_no_context_takeover", deflateParams{serverNoContextTakeover: true}, false},
		{"client_no_context_takeover echoed", []string{"permessage-deflate; client_no_context_takeover"}, on, true,
			"permessage-deflate; client_no_context_takeover", deflateParams{clientNoContextTakeover: true}, false},
		{"our no context takeover", []string{"permessage-deflate"}, &CompressionOptions{NoContextTakeover: true}, true,
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true}, false},
		{"server_max_window_bits echoed", []string{"permessage-deflate; server_max_window_bits=10"}, on, true,
			"permessage-deflate; server_max_window_bits=10", deflateParams{serverMaxWindowBits: 10}, false},
		{"server_max_window_bits lowered by us", []string{"permessage-deflate; server_max_window_bits=12"}, &CompressionOptions{ServerMaxWindowBits: 9}, true,
			"permessage-deflate; server_max_window_bits=9", deflateParams{serverMaxWindowBits: 9}, false},
		{"server_max_window_bits offered lower than ours", []string{"permessage-deflate; server_max_window_bits=8"}, &CompressionOptions{ServerMaxWindowBits: 9}, true,
			"permessage-deflate; server_max_window_bits=8", deflateParams{serverMaxWindowBits: 8}, false},
		{"server_max_window_bits unasked", []string{"permessage-deflate"}, &CompressionOptions{ServerMaxWindowBits: 11}, true,
			"permessage-deflate; server_max_window_bits=11", deflateParams{serverMaxWindowBits: 11}, false},
		{"server_max_window_bits 15 option is no limit", []string{"permessage-deflate"}, &CompressionOptions{ServerMaxWindowBits: 15}, true,
			"permessage-deflate", deflateParams{}, false},
		{"client_max_window_bits without value, we don't care", []string{"permessage-deflate; client_max_window_bits"}, on, true,
			"permessage-deflate", deflateParams{}, false},
		{"client_max_window_bits without value, we limit", []string{"permessage-deflate; client_max_window_bits"}, &CompressionOptions{ClientMaxWindowBits: 10}, true,
			"permessage-deflate; client_max_window_bits=10", deflateParams{clientMaxWindowBits: 10}, false},
		{"client_max_window_bits hint already below ours", []string{"permessage-deflate; client_max_window_bits=9"}, &CompressionOptions{ClientMaxWindowBits: 10}, true,
			"permessage-deflate", deflateParams{}, false},
		{"client_max_window_bits hint above ours", []string{"permessage-deflate; client_max_window_bits=12"}, &CompressionOptions{ClientMaxWindowBits: 10}, true,
			"permessage-deflate; client_max_window_bits=10", deflateParams{clientMaxWindowBits: 10}, false},
		{"client_max_window_bits not offered: may not send it", []string{"permessage-deflate"}, &CompressionOptions{ClientMaxWindowBits: 10}, true,
			"permessage-deflate", deflateParams{}, false},
		{"invalid first offer declined, second taken",
			[]string{"permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits"}, on, true,
			"permessage-deflate", deflateParams{}, false},
		{"first of two valid offers",
			[]string{"permessage-deflate; server_no_context_takeover", "permessage-deflate"}, on, true,
			"permessage-deflate; server_no_context_takeover", deflateParams{serverNoContextTakeover: true}, false},
		{"unknown param declined", []string{"permessage-deflate; foo"}, on, false, "", deflateParams{}, false},
		{"duplicate param declined", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, on, false, "", deflateParams{}, false},
		{"value on no-value param declined", []string{"permessage-deflate; client_no_context_takeover=1"}, on, false, "", deflateParams{}, false},
		{"leading zero declined", []string{"permessage-deflate; server_max_window_bits=08"}, on, false, "", deflateParams{}, false},
		{"all offers invalid", []string{"permessage-deflate; x, permessage-deflate; server_max_window_bits"}, on, false, "", deflateParams{}, false},
		{"malformed header", []string{"permessage-deflate; ="}, on, false, "", deflateParams{}, true},
		{"malformed header ignored while off", []string{"permessage-deflate;;"}, nil, false, "", deflateParams{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, resp, ok, err := deflateNegotiateServer(tt.values, tt.opts)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, extErrSyntax)) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if ok != tt.ok || resp != tt.resp || got != tt.want {
				t.Fatalf("= %+v, %q, %v; want %+v, %q, %v", got, resp, ok, tt.want, tt.resp, tt.ok)
			}
			if !ok {
				return
			}
			// The client we are answering must accept what we sent.
			offers, _ := extParseHeader(tt.values)
			var offer deflateParams
			for _, o := range offers {
				if p, err := deflateParseParams(o.params, true); err == nil && strings.EqualFold(o.name, deflateExtName) {
					offer = p
					break
				}
			}
			back, cok, cerr := deflateCheckResponse(&offer, []string{resp})
			if cerr != nil || !cok || back != got {
				t.Fatalf("client check of %q = %+v, %v, %v; want %+v", resp, back, cok, cerr, got)
			}
		})
	}
}

func TestDeflateClientOffer(t *testing.T) {
	tests := []struct {
		opts *CompressionOptions
		want string
	}{
		{nil, ""},
		{&CompressionOptions{}, "permessage-deflate; client_max_window_bits"},
		{&CompressionOptions{NoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"},
		{&CompressionOptions{ServerMaxWindowBits: 10, ClientMaxWindowBits: 9}, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"},
		{&CompressionOptions{ServerMaxWindowBits: 15, ClientMaxWindowBits: 3}, "permessage-deflate; client_max_window_bits=8"},
	}
	for _, tt := range tests {
		got := deflateClientOffer(tt.opts)
		if got != tt.want {
			t.Errorf("deflateClientOffer(%+v) = %q, want %q", tt.opts, got, tt.want)
		}
		if got == "" {
			continue
		}
		// A server with default options must accept our offer.
		if _, _, ok, err := deflateNegotiateServer([]string{got}, &CompressionOptions{}); !ok || err != nil {
			t.Errorf("server declined %q: %v", got, err)
		}
	}
}

func TestDeflateAcceptResponse(t *testing.T) {
	on := &CompressionOptions{}
	tests := []struct {
		name    string
		opts    *CompressionOptions
		values  []string
		ok      bool
		want    deflateParams
		wantErr bool
	}{
		{"declined", on, nil, false, deflateParams{}, false},
		{"declined, blank header", on, []string{""}, false, deflateParams{}, false},
		{"not offered, none back", nil, nil, false, deflateParams{}, false},
		{"plain", on, []string{"permessage-deflate"}, true, deflateParams{}, false},
		{"all params", on, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=10"}, true,
			deflateParams{serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 10}, false},
		{"server lowers our limit", &CompressionOptions{ServerMaxWindowBits: 12}, []string{"permessage-deflate; server_max_window_bits=10"}, true,
			deflateParams{serverMaxWindowBits: 10}, false},
		{"server echoes our limit", &CompressionOptions{ServerMaxWindowBits: 12}, []string{"permessage-deflate; server_max_window_bits=12"}, true,
			deflateParams{serverMaxWindowBits: 12}, false},
		{"missing server_no_context_takeover tolerated", &CompressionOptions{NoContextTakeover: true}, []string{"permessage-deflate"}, true, deflateParams{}, false},

		{"not offered, accepted anyway", nil, []string{"permessage-deflate"}, false, deflateParams{}, true},
		{"unrequested extension", on, []string{"x-foo"}, false, deflateParams{}, true},
		{"unrequested extension next to ours", on, []string{"permessage-deflate, x-foo"}, false, deflateParams{}, true},
		{"two elements", on, []string{"permessage-deflate", "permessage-deflate"}, false, deflateParams{}, true},
		{"unknown param", on, []string{"permessage-deflate; foo"}, false, deflateParams{}, true},
		{"duplicate param", on, []string{"permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"}, false, deflateParams{}, true},
		{"client_max_window_bits without value", on, []string{"permessage-deflate; client_max_window_bits"}, false, deflateParams{}, true},
		{"bad window bits", on, []string{"permessage-deflate; server_max_window_bits=7"}, false, deflateParams{}, true},
		{"server raises our limit", &CompressionOptions{ServerMaxWindowBits: 10}, []string{"permessage-deflate; server_max_window_bits=11"}, false, deflateParams{}, true},
		{"server drops our limit", &CompressionOptions{ServerMaxWindowBits: 10}, []string{"permessage-deflate"}, false, deflateParams{}, true},
		{"value on no-value param", on, []string{"permessage-deflate; server_no_context_takeover=1"}, false, deflateParams{}, true},
		{"malformed", on, []string{"permessage-deflate;"}, false, deflateParams{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := deflateAcceptResponse(tt.opts, tt.values)
			if tt.wantErr != (err != nil) {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if ok != tt.ok || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestDeflateCheckResponseUnofferedClientBits covers RFC 7692 §7.1.2.2 for an
// offer without client_max_window_bits, which deflateClientOffer never makes
// today but the check must still hold.
func TestDeflateCheckResponseUnofferedClientBits(t *testing.T) {
	_, ok, err := deflateCheckResponse(&deflateParams{}, []string{"permessage-deflate; client_max_window_bits=10"})
	if err == nil || ok {
		t.Fatalf("got ok=%v err=%v, want an error", ok, err)
	}
	got, ok, err := deflateCheckResponse(&deflateParams{clientMaxWindowBits: 12}, []string{"permessage-deflate; client_max_window_bits=10"})
	if err != nil || !ok || got.clientMaxWindowBits != 10 {
		t.Fatalf("got %+v ok=%v err=%v", got, ok, err)
	}
}

func TestDeflateParamsDirections(t *testing.T) {
	dp := deflateParams{serverNoContextTakeover: true, clientMaxWindowBits: 10}
	opts := &CompressionOptions{}
	if c := dp.newCompressor(true, opts); c.takeover || c.windowBits != 0 {
		t.Errorf("server compressor: takeover=%v bits=%d, want false, 0", c.takeover, c.windowBits)
	}
	if c := dp.newCompressor(false, opts); c.takeover || c.windowBits != 10 {
		t.Errorf("client compressor: takeover=%v bits=%d, want false (window limited), 10", c.takeover, c.windowBits)
	}
	if !dp.peerTakeover(true) {
		t.Error("server decompressor must keep the client's window")
	}
	if dp.peerTakeover(false) {
		t.Error("client decompressor need not keep a window the server may not use")
	}
	if c := (deflateParams{}).newCompressor(false, &CompressionOptions{NoContextTakeover: true}); c.takeover {
		t.Error("our NoContextTakeover must hold even when the server did not echo it")
	}
	if c := (deflateParams{}).newCompressor(false, &CompressionOptions{ClientMaxWindowBits: 9}); c.windowBits != 9 {
		t.Errorf("client must keep to the limit it offered: bits=%d", c.windowBits)
	}
	if c := (deflateParams{}).newCompressor(true, opts); !c.takeover || c.level != compressDefaultLevel || c.threshold != compressDefaultThreshold {
		t.Errorf("default server compressor = %+v", c)
	}
}

func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
		`permessage-deflate; server_max_window_bits="10", permessage-deflate`,
		"a;b=1, ,c ; d = e",
		`x; y="a\b"`,
		"permessage-deflate; ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		offers, err := extParseHeader([]string{s})
		if err != nil {
			if !errors.Is(err, extErrSyntax) {
				t.Fatalf("error %v does not wrap extErrSyntax", err)
			}
			return
		}
		again, err := extParseHeader([]string{extFormat(offers)})
		if err != nil {
			t.Fatalf("re-parse of %q: %v", extFormat(offers), err)
		}
		if !reflect.DeepEqual(again, offers) {
			t.Fatalf("re-parse = %#v, want %#v", again, offers)
		}
		// The negotiation layers must not panic on anything that parses.
		_, resp, ok, err := deflateNegotiateServer([]string{s}, &CompressionOptions{})
		if err != nil {
			t.Fatalf("negotiate: %v", err)
		}
		if ok {
			if _, err := extParseHeader([]string{resp}); err != nil {
				t.Fatalf("response %q does not parse: %v", resp, err)
			}
		}
		_, _, _ = deflateAcceptResponse(&CompressionOptions{ServerMaxWindowBits: 10}, []string{s})
	})
}
