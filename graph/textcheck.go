package graph

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrNotText is returned by CheckJSONText for client text that decoding would
// silently change: Go's JSON decoder replaces invalid UTF-8 and escaped lone
// surrogates with U+FFFD, so a client's data would be stored altered.
// Hindsight never alters a client's data: such a request is refused with
// BAD_USER_INPUT and writes nothing.
var ErrNotText = errors.New("not valid UTF-8 text")

// CheckJSONText checks a JSON text from a client (a request body, a GET
// parameter, a websocket message) before it is decoded: it must be valid
// UTF-8, and every \u escape of a surrogate must be half of a pair. It does
// not check the JSON grammar; the decoder does that.
func CheckJSONText(b []byte) error {
	if !utf8.Valid(b) {
		for i := 0; i < len(b); {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrNotText, i)
			}
			i += n
		}
	}
	// A backslash occurs only inside JSON strings, so no string state is
	// needed: every escape starts at a backslash not itself escaped.
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\\') // bodies are mostly text without escapes: jump
		if j < 0 {
			return nil
		}
		i += j
		if i+1 >= len(b) {
			return nil
		}
		if b[i+1] != 'u' {
			i++ // \" \\ \/ \b ...: skip the escaped byte
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			i++
			continue // not an escape the decoder accepts; it reports the syntax error
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF: // high surrogate: a low one must follow
			lo, ok := -1, false
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				lo, ok = hex4(b, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return fmt.Errorf("%w: \\u%04X at byte %d is half of a surrogate pair", ErrNotText, r, i)
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return fmt.Errorf("%w: \\u%04X at byte %d is half of a surrogate pair", ErrNotText, r, i)
		default:
			i += 5
		}
	}
	return nil
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (int, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	r := 0
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= int(c - '0')
		case 'a' <= c && c <= 'f':
			r |= int(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= int(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
