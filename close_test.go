package websocket

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClosePayload(t *testing.T) {
	cases := []struct {
		name       string
		in         []byte
		wantCode   StatusCode
		wantReason string
		wantErr    StatusCode // close code of the expected *ProtocolError
	}{
		{"empty", nil, StatusNoStatusReceived, "", 0},
		{"one byte", []byte{0x03}, 0, "", StatusProtocolError},
		{"1000", []byte{0x03, 0xe8}, StatusNormalClosure, "", 0},
		{"1000 with reason", append([]byte{0x03, 0xe8}, "bye"...), StatusNormalClosure, "bye", 0},
		{"4999", []byte{0x13, 0x87}, 4999, "", 0},
		{"999", []byte{0x03, 0xe7}, 0, "", StatusProtocolError},
		{"1004", []byte{0x03, 0xec}, 0, "", StatusProtocolError},
		{"1005", []byte{0x03, 0xed}, 0, "", StatusProtocolError},
		{"1006", []byte{0x03, 0xee}, 0, "", StatusProtocolError},
		{"1015", []byte{0x03, 0xf7}, 0, "", StatusProtocolError},
		{"2999", []byte{0x0b, 0xb7}, 0, "", StatusProtocolError},
		{"5000", []byte{0x13, 0x88}, 0, "", StatusProtocolError},
		{"invalid UTF-8 reason", []byte{0x03, 0xe8, 0xff}, 0, "", StatusInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, err := parseClosePayload(tc.in)
			if tc.wantErr != 0 {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tc.wantErr {
					t.Fatalf("got %v, want a protocol error with %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || code != tc.wantCode || reason != tc.wantReason {
				t.Fatalf("got %v %q %v", code, reason, err)
			}
		})
	}
}

func TestValidOnWire(t *testing.T) {
	for c := 0; c < 6000; c++ {
		code := StatusCode(c)
		want := (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
		if code.validOnWire() != want {
			t.Errorf("%d: validOnWire = %v", c, !want)
		}
	}
}

func TestCheckCloseArgs(t *testing.T) {
	if err := checkCloseArgs(StatusNormalClosure, strings.Repeat("x", 123)); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		code   StatusCode
		reason string
	}{
		{StatusNormalClosure, strings.Repeat("x", 124)},
		{StatusNoStatusReceived, ""},
		{StatusAbnormalClosure, ""},
		{StatusTLSHandshake, ""},
		{StatusNormalClosure, "\xff"},
	}
	for _, b := range bad {
		if err := checkCloseArgs(b.code, b.reason); err == nil {
			t.Errorf("checkCloseArgs(%v, %q) accepted", b.code, b.reason)
		}
	}
}

func TestCloseStatus(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &CloseError{Code: StatusGoingAway, Reason: "bye"})
	if got := CloseStatus(err); got != StatusGoingAway {
		t.Fatalf("CloseStatus = %v", got)
	}
	if got := CloseStatus(errors.New("other")); got != 0 {
		t.Fatalf("CloseStatus(other) = %v", got)
	}
	if s := StatusMessageTooBig.String(); s != "1009 (message too big)" {
		t.Fatalf("String = %q", s)
	}
	if s := (&CloseError{Code: StatusNormalClosure, Reason: "x"}).Error(); !strings.Contains(s, "1000") || !strings.Contains(s, `"x"`) {
		t.Fatalf("Error = %q", s)
	}
}
