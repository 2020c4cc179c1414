package wire

import (
	"bytes"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
)

func naiveMask(b []byte, key [4]byte) {
	for i := range b {
		b[i] ^= key[i%4]
	}
}

func TestMaskMatchesBytewise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 100, 1024, 65537} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		key := [4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
		want := bytes.Clone(b)
		naiveMask(want, key)
		Mask(b, key)
		if !bytes.Equal(b, want) {
			t.Fatalf("length %d: word-wise mask differs from byte-wise", n)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{0xab}, n)
		key := [4]byte{1, 2, 3, 4}
		f := AppendClientFrame(nil, OpBinary, payload, key)
		h, hl, err := ParseHeader(f)
		if err != nil {
			t.Fatalf("length %d: %v", n, err)
		}
		if !h.Fin || h.Op != OpBinary || !h.Masked || h.Key != key || h.Len != int64(n) || hl+n != len(f) {
			t.Fatalf("length %d: header %+v, header length %d, frame %d", n, h, hl, len(f))
		}
		got := bytes.Clone(f[hl:])
		Mask(got, h.Key)
		if !bytes.Equal(got, payload) {
			t.Fatalf("length %d: payload does not unmask back", n)
		}
		// Every prefix shorter than the header is reported as short.
		for i := 0; i < hl; i++ {
			if _, _, err := ParseHeader(f[:i]); err != ErrShort {
				t.Fatalf("length %d: prefix %d gave %v, want ErrShort", n, i, err)
			}
		}
	}
}

func TestServerHeaderUnmasked(t *testing.T) {
	f := AppendHeader(nil, false, OpText, 300, nil)
	h, hl, err := ParseHeader(f)
	if err != nil || h.Fin || h.Masked || h.Op != OpText || h.Len != 300 || hl != 4 {
		t.Fatalf("got %+v %d %v", h, hl, err)
	}
}

func TestParseHeaderRejectsHugeLength(t *testing.T) {
	f := []byte{0x82, 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if _, _, err := ParseHeader(f); err == nil || err == ErrShort {
		t.Fatalf("got %v, want a length error", err)
	}
}

func TestAcceptKeyRFCExample(t *testing.T) {
	// The example of RFC 6455 section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("got %q", got)
	}
}

func TestServerHandshake(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := ServerHandshake(r); err == nil {
		t.Fatal("a plain GET was accepted")
	}
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := ServerHandshake(r)
	if err != nil || !bytes.Contains([]byte(resp), []byte("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
		t.Fatalf("got %q, %v", resp, err)
	}
}
