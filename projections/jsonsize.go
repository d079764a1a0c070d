package projections

import (
	"encoding/json"
	"unicode/utf8"
)

// jsonSize is what a decoded JSON value costs: text, the length of the JSON
// that encoding/json writes for it (what a snapshot of it stores, and what
// Stream.state answers), and values, how many JSON values it holds, each of
// which costs memory beyond its text once decoded (a map entry, an
// interface, a string header).
//
// The merge projection keeps the size of every state it folds exactly, at
// the cost of walking each patch and what the patch removes (mergeDelta), so
// that a state over MaxStreamStateBytes is refused at the event that makes
// it so. For other projections the engine keeps an estimate (foldEstimate).
type jsonSize struct {
	text   int
	values int
}

// valueOverhead is what the cache counts per decoded value beyond its text:
// about what a map entry or a slice slot plus an interface and a string or
// json.Number header take on a 64-bit machine.
const valueOverhead = 64

func (a jsonSize) plus(b jsonSize) jsonSize  { return jsonSize{a.text + b.text, a.values + b.values} }
func (a jsonSize) minus(b jsonSize) jsonSize { return jsonSize{a.text - b.text, a.values - b.values} }

// memory estimates the bytes the decoded value holds.
func (a jsonSize) memory() int64 { return int64(a.text) + valueOverhead*int64(a.values) }

// sizeOf measures a decoded JSON value (map[string]any, []any, string,
// json.Number, bool or nil) as encoding/json encodes it.
func sizeOf(v any) jsonSize {
	switch v := v.(type) {
	case nil:
		return jsonSize{text: len("null"), values: 1}
	case bool:
		if v {
			return jsonSize{text: len("true"), values: 1}
		}
		return jsonSize{text: len("false"), values: 1}
	case string:
		return jsonSize{text: quotedLen(v), values: 1}
	case json.Number:
		return jsonSize{text: max(len(v), 1), values: 1} // encoding/json writes "" as 0
	case map[string]any:
		s := jsonSize{text: len("{}") + commas(len(v)), values: 1}
		for k, x := range v {
			s = s.plus(memberSize(k, x))
		}
		return s
	case []any:
		s := jsonSize{text: len("[]") + commas(len(v)), values: 1}
		for _, x := range v {
			s = s.plus(sizeOf(x))
		}
		return s
	}
	// Not a decoded value (a state is only ever made of those); measure it
	// the slow way.
	b, _ := json.Marshal(v)
	return jsonSize{text: len(b), values: 1}
}

// memberSize is an object member's size: its quoted name, a colon and its
// value (the comma before it is counted by commas).
func memberSize(name string, v any) jsonSize {
	s := sizeOf(v)
	s.text += quotedLen(name) + len(":")
	return s
}

// commas is the number of commas between n members or items.
func commas(n int) int { return max(n-1, 0) }

// asciiGrowth is how many bytes encoding/json adds to an ASCII byte when it
// writes it in a string: 1 for \" \\ \b \f \n \r \t, 5 for the other control
// characters and for < > & (written \u00XX), 0 for the rest.
var asciiGrowth = func() (t [utf8.RuneSelf]uint8) {
	for b := range t {
		switch {
		case b == '"' || b == '\\' || b == '\b' || b == '\f' || b == '\n' || b == '\r' || b == '\t':
			t[b] = 1
		case b < 0x20 || b == '<' || b == '>' || b == '&':
			t[b] = 5
		}
	}
	return t
}()

// quotedLen is the length of s as encoding/json writes it (with its default
// HTML escaping): quotes, escapes, invalid UTF-8 bytes as \ufffd, and
// U+2028 and U+2029 escaped. A byte at a time through a table it measures
// about 2.5 GB/s (BenchmarkQuotedLen), faster than the eight-bytes-at-a-time
// bit tricks tried instead.
func quotedLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			n += int(asciiGrowth[b])
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			n += len(`\ufffd`) - 1
		case c == '\u2028' || c == '\u2029':
			n += len(`\u2028`) - size
		}
		i += size
	}
	return n
}
