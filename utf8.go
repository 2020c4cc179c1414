package websocket

import "encoding/binary"

// utf8Validator checks a text message incrementally, because RFC 6455 §8.1
// requires the connection to fail as soon as the octets can no longer form
// valid UTF-8, which may be in the middle of a frame, and a character may be
// split across frames or reads. The zero value is ready to use.
type utf8Validator struct {
	// need is the number of continuation bytes still owed by the character
	// that was cut off at the end of the previous feed.
	need uint8
	// lo and hi bound the next continuation byte; only the first one after a
	// lead byte is narrower than 0x80..0xBF (overlongs, surrogates, >U+10FFFF).
	lo, hi uint8
	// bad is sticky so that a caller that keeps feeding after a failure is
	// never told the message became valid again.
	bad bool
}

// feed validates p as the continuation of everything fed since the last
// reset. It returns false as soon as the bytes seen so far cannot be the
// prefix of any valid UTF-8 string, and keeps returning false until reset.
func (v *utf8Validator) feed(p []byte) bool {
	if v.bad {
		return false
	}
	// Finish the character cut off by the previous feed, if any.
	for v.need > 0 {
		if len(p) == 0 {
			return true
		}
		if c := p[0]; c < v.lo || c > v.hi {
			v.bad = true
			return false
		}
		p = p[1:]
		v.need--
		v.lo, v.hi = 0x80, 0xBF
	}

	// Dropping the capacity saves recomputing it at every reslice below.
	p = p[:len(p):len(p)]
	const hiBits = 0x8080808080808080
	le := binary.LittleEndian
	for len(p) > 0 {
		c := p[0]
		if c < 0x80 {
			// Text on the wire is mostly ASCII: once one ASCII byte shows up,
			// try to skip 8 more with one test, and if that works, 32 at a
			// time. Starting small keeps mixed text from paying for 32-byte
			// tests that fail.
			p = p[1:]
			if len(p) >= 8 && le.Uint64(p)&hiBits == 0 {
				p = p[8:]
				for len(p) >= 32 && (le.Uint64(p)|le.Uint64(p[8:])|le.Uint64(p[16:])|le.Uint64(p[24:]))&hiBits == 0 {
					p = p[32:]
				}
				for len(p) >= 8 && le.Uint64(p)&hiBits == 0 {
					p = p[8:]
				}
			}
			continue
		}

		// Lead bytes from 0xC0 up, indexed by their low 6 bits: needs gives
		// the number of continuation bytes (0 = never valid: C0 and C1 only
		// start overlongs, F5 and above are out of range), los and his the
		// range of the first continuation byte, narrowed after E0 (overlongs),
		// ED (surrogates), F0 (overlongs) and F4 (above U+10FFFF). Separate
		// tables keep the three loads independent of each other.
		const (
			needs = "\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" + // C0..CF
				"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" + // D0..DF
				"\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02" + // E0..EF
				"\x03\x03\x03\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // F0..FF
			los = "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80" +
				"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80" +
				"\xa0\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80" +
				"\x90\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"
			his = "\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf" +
				"\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf" +
				"\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\x9f\xbf\xbf" +
				"\xbf\xbf\xbf\xbf\x8f\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf\xbf"
		)
		// Bytes 0x80..0xBF are continuation bytes and cannot start a character.
		need := int(needs[c&0x3F])
		lo, hi := los[c&0x3F], his[c&0x3F]
		if c < 0xC0 || need == 0 {
			v.bad = true
			return false
		}
		if len(p) > need {
			// The whole character is here: check it in one go.
			if c1 := p[1]; c1 < lo || c1 > hi {
				v.bad = true
				return false
			}
			if need >= 2 && p[2]&0xC0 != 0x80 || need == 3 && p[3]&0xC0 != 0x80 {
				v.bad = true
				return false
			}
			p = p[need+1:]
			continue
		}
		// The character is cut off by the end of p: check what is present and
		// remember what the rest must look like.
		for _, c := range p[1:] {
			if c < lo || c > hi {
				v.bad = true
				return false
			}
			need--
			lo, hi = 0x80, 0xBF
		}
		v.need, v.lo, v.hi = uint8(need), lo, hi
		return true
	}
	return true
}

// complete reports whether the bytes fed so far form valid UTF-8 that ends on
// a character boundary, i.e. whether the message may end here.
func (v *utf8Validator) complete() bool {
	return !v.bad && v.need == 0
}

// reset prepares v for a new message.
func (v *utf8Validator) reset() {
	*v = utf8Validator{}
}
