package conformance

import (
	"fmt"
	"unicode/utf8"
)

// UTF-8 handling: Autobahn 6.x (RFC 6455 5.6 and 8.1, RFC 3629).

type utf8Sample struct {
	name string
	data string
}

// validUTF8 holds valid text, including the boundaries of every encoding length
// and noncharacters (U+FFFE, U+FFFF), which are valid UTF-8.
var validUTF8 = []utf8Sample{
	{"ascii", "Hello, world!"},
	{"greek_kosme", "κόσμε"},
	{"mixed", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"u0080_first_2_byte", "a\u0080b"},
	{"u07ff_last_2_byte", "a\u07ffb"},
	{"u0800_first_3_byte", "a\u0800b"},
	{"ud7ff_before_surrogates", "a\ud7ffb"},
	{"ue000_after_surrogates", "a\ue000b"},
	{"ufffd_replacement", "a\ufffdb"},
	{"ufffe_noncharacter", "a\ufffeb"},
	{"uffff_last_3_byte", "a\uffffb"},
	{"u10000_first_4_byte", "a\U00010000b"},
	{"u10ffff_last_code_point", "a\U0010ffffb"},
	{"emoji", "smile \U0001F600 ok"},
	{"nul_and_bom", "a\x00b\ufeffc"},
}

// invalidUTF8 holds byte sequences that are not UTF-8, each embedded in valid
// text. The tail cases end the message in the middle of a sequence.
var invalidUTF8 = []utf8Sample{
	{"lone_continuation_80", "ab\x80cd"},
	{"lone_continuation_bf", "ab\xbfcd"},
	{"three_continuations", "ab\x80\xbf\x80cd"},
	{"c0_lead", "ab\xc0\xafcd"},
	{"c1_overlong", "ab\xc1\xbfcd"},
	{"overlong_3_byte_slash", "ab\xe0\x80\xafcd"},
	{"overlong_3_byte_max", "ab\xe0\x9f\xbfcd"},
	{"overlong_4_byte_slash", "ab\xf0\x80\x80\xafcd"},
	{"overlong_4_byte_max", "ab\xf0\x8f\xbf\xbfcd"},
	{"surrogate_high_d800", "ab\xed\xa0\x80cd"},
	{"surrogate_low_dfff", "ab\xed\xbf\xbfcd"},
	{"surrogate_pair", "ab\xed\xa0\x80\xed\xb0\x80cd"},
	{"above_10ffff", "ab\xf4\x90\x80\x80cd"},
	{"f5_lead", "ab\xf5\x80\x80\x80cd"},
	{"f8_five_byte_form", "ab\xf8\x88\x80\x80\x80cd"},
	{"fc_six_byte_form", "ab\xfc\x84\x80\x80\x80\x80cd"},
	{"fe_byte", "ab\xfecd"},
	{"ff_byte", "ab\xffcd"},
	{"2_byte_lead_then_ascii", "ab\xc2 cd"},
	{"3_byte_lead_then_ascii", "ab\xe2\x82 cd"},
	{"4_byte_lead_then_ascii", "ab\xf0\x9f\x98 cd"},
	{"kosme_with_surrogate", "κόσμε\xed\xa0\x80edited"},
	{"truncated_2_byte_at_end", "ab\xc2"},
	{"truncated_3_byte_at_end", "ab\xe2\x82"},
	{"truncated_4_byte_at_end", "ab\xf0\x9f\x98"},
}

// validPrefix reports whether p can still be extended into valid UTF-8: the
// point after which a fail-fast receiver must already have failed. It follows
// the table of well-formed sequences in RFC 3629 section 4 directly rather than
// relying on the library under test.
func validPrefix(p []byte) bool {
	for len(p) > 0 {
		if p[0] < 0x80 {
			p = p[1:]
			continue
		}
		r, size := utf8.DecodeRune(p)
		if r != utf8.RuneError || size > 1 {
			p = p[size:]
			continue
		}
		// An error: either a real error or a sequence cut off by the end of p.
		need, lo, hi := seqShape(p[0])
		if need == 0 || len(p) >= need {
			return false
		}
		for i := 1; i < len(p); i++ {
			l, h := byte(0x80), byte(0xbf)
			if i == 1 {
				l, h = lo, hi
			}
			if p[i] < l || p[i] > h {
				return false
			}
		}
		return true
	}
	return true
}

// seqShape gives a lead byte's sequence length and the allowed range of its
// second byte (RFC 3629 section 4); need is 0 for bytes that cannot lead.
func seqShape(b byte) (need int, lo, hi byte) {
	switch {
	case b >= 0xc2 && b <= 0xdf:
		return 2, 0x80, 0xbf
	case b == 0xe0:
		return 3, 0xa0, 0xbf
	case b >= 0xe1 && b <= 0xec, b == 0xee, b == 0xef:
		return 3, 0x80, 0xbf
	case b == 0xed:
		return 3, 0x80, 0x9f
	case b == 0xf0:
		return 4, 0x90, 0xbf
	case b >= 0xf1 && b <= 0xf3:
		return 4, 0x80, 0xbf
	case b == 0xf4:
		return 4, 0x80, 0x8f
	}
	return 0, 0, 0
}

// firstBad returns the length of the shortest prefix of s that is no longer a
// valid prefix, or len(s)+1 when only the end of the message makes it invalid.
func firstBad(s []byte) int {
	for i := 1; i <= len(s); i++ {
		if !validPrefix(s[:i]) {
			return i
		}
	}
	return len(s) + 1
}

func utf8Section() section {
	const failFast = "fail-fast: the fragment holding the first impossible byte is the last thing sent; the library must fail with 1007 without the rest"
	var cs []tcase
	for _, s := range validUTF8 {
		b := []byte(s.data)
		cs = append(cs, tcase{name: "valid_" + s.name, send: []frame{textB(b)}, want: []item{echoI(opText, b)}})
		for i := 0; i <= len(b); i++ {
			cs = append(cs, tcase{name: fmt.Sprintf("valid_%s_split_at_%d", s.name, i),
				send: []frame{textB(b[:i]).frag(), contF(b[i:])}, want: []item{echoI(opText, b)}})
		}
	}
	// Every position split into single-byte fragments as well: the strictest
	// test of validation state kept across fragment boundaries.
	kosme := []byte("κόσμε\U0001F600")
	cs = append(cs, tcase{name: "valid_kosme_emoji_one_byte_fragments", send: fragments(opText, kosme, 1), want: []item{echoI(opText, kosme)}})

	for _, s := range invalidUTF8 {
		b := []byte(s.data)
		bad := firstBad(b)
		cs = append(cs, tcase{name: "invalid_" + s.name, send: []frame{textB(b)}, close: codes(1007)})
		for i := 0; i <= len(b); i++ {
			c := tcase{name: fmt.Sprintf("invalid_%s_split_at_%d", s.name, i), close: codes(1007)}
			if i >= bad {
				// The first fragment alone is already impossible to complete.
				c.send = []frame{textB(b[:i]).frag()}
				c.note = failFast
			} else {
				c.send = []frame{textB(b[:i]).frag(), contF(b[i:])}
			}
			cs = append(cs, c)
		}
		if bad <= len(b) {
			cs = append(cs,
				tcase{name: "fail_fast_" + s.name + "_one_byte_fragments", send: unfinished(fragments(opText, b[:bad], 1)),
					close: codes(1007), note: failFast},
				tcase{name: "fail_fast_" + s.name + "_within_frame", send: []frame{textB(b[:bad]).declare(uint64(len(b) + 1000))},
					close: codes(1007), note: "fail-fast inside one frame: the header announces 1000 more bytes than are sent; " +
						"RFC 6455 8.1 does not say when to fail, the brief asks for 'as soon as the invalid byte arrives'"},
			)
		}
	}
	cs = append(cs,
		tcase{name: "invalid_in_binary_is_fine", send: []frame{binF([]byte("ab\xff\xfe\xed\xa0\x80"))}, want: []item{echoI(opBinary, []byte("ab\xff\xfe\xed\xa0\x80"))},
			note: "only text is validated; binary carries any bytes"},
		tcase{name: "valid_text_after_ping_between_fragments_split_rune", send: []frame{textB([]byte("κ")[:1]).frag(), pingF(nil), contF([]byte("κ")[1:])},
			want: []item{pongI(nil), textI("κ")}},
	)
	return section{name: "8.1_utf8", cases: cs}
}

// unfinished marks every frame as followed by more, so the message never ends.
func unfinished(fs []frame) []frame {
	out := make([]frame, len(fs))
	for i, f := range fs {
		f.more = true
		out[i] = f
	}
	return out
}
