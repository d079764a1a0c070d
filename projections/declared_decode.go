package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// jqDecode turns JSON (an event's data or metadata, a stored state) into
// the value jq reads, or nil for empty or invalid JSON (the store holds
// valid JSON only).
//
// Numbers are what gojq's own fromjson gives, json.Number, which gojq takes
// as a number and writes back as it was written, so no precision is lost:
// json.Unmarshal made every number a float64, which rounded integers past
// 2^53 (two account ids could land in one partition). An integer that fits
// an int is an int instead: the same value to gojq (it parses a json.Number
// so) and cheaper, as most numbers in events are small integers.
//
// The decoder is written here, not encoding/json's, because this runs for
// every event a projection folds: encoding/json validates the whole input
// before decoding it, and reaches numbers as json.Number only through a
// Decoder, which buffers a copy; together that was a tenth of a simple
// reducer's fold. Anything it does not decode itself (an escaped string, a
// string that is not valid UTF-8) it hands to encoding/json, and an input
// it finds invalid goes to encoding/json whole, so the two agree
// (TestJQDecodeAgreesWithEncodingJSON, FuzzJQDecode).
func jqDecode(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	if v, err := decodeJQ(b); err == nil {
		return v
	}
	v, _ := decodeJQSlow(b)
	return v
}

// decodeJQSlow is gojq's own way (fromjson): encoding/json with numbers as
// json.Number.
func decodeJQSlow(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errJSONSyntax
	}
	return v, nil
}

var errJSONSyntax = errors.New("invalid JSON")

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type jqDecoder struct {
	b []byte
	i int
}

func decodeJQ(b []byte) (any, error) {
	d := jqDecoder{b: b}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.space(); d.i != len(d.b) {
		return nil, errJSONSyntax
	}
	return v, nil
}

func (d *jqDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jqDecoder) value(depth int) (any, error) {
	if d.i >= len(d.b) || depth > maxJSONDepth {
		return nil, errJSONSyntax
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.string()
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, errJSONSyntax
}

func (d *jqDecoder) literal(word string) error {
	if !bytes.HasPrefix(d.b[d.i:], []byte(word)) {
		return errJSONSyntax
	}
	d.i += len(word)
	return nil
}

func (d *jqDecoder) object(depth int) (any, error) {
	d.i++ // {
	m := map[string]any{}
	if d.space(); d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, errJSONSyntax
		}
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		if d.space(); d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, errJSONSyntax
		}
		d.i++
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k.(string)] = v // a repeated name: the last one, as encoding/json
		done, err := d.after('}')
		if err != nil {
			return nil, err
		}
		if done {
			return m, nil
		}
	}
}

func (d *jqDecoder) array(depth int) (any, error) {
	d.i++ // [
	a := []any{}
	if d.space(); d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		done, err := d.after(']')
		if err != nil {
			return nil, err
		}
		if done {
			return a, nil
		}
	}
}

// after reads what follows a member or an element: a comma (false) or
// the closing bracket (true).
func (d *jqDecoder) after(closing byte) (bool, error) {
	if d.space(); d.i >= len(d.b) {
		return false, errJSONSyntax
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		d.space()
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, errJSONSyntax
}

// string reads a string; an escape or a byte past ASCII sends it to
// encoding/json, which knows escapes and replaces invalid UTF-8.
func (d *jqDecoder) string() (any, error) {
	start := d.i
	d.i++ // "
	plain := true
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			s := d.b[start+1 : d.i-1]
			if plain || utf8.Valid(s) && bytes.IndexByte(s, '\\') < 0 {
				return string(s), nil
			}
			var out string
			if err := json.Unmarshal(d.b[start:d.i], &out); err != nil {
				return nil, err
			}
			return out, nil
		case c == '\\':
			plain = false
			d.i += 2
		case c < 0x20:
			return nil, errJSONSyntax
		case c >= utf8.RuneSelf:
			plain = false
			d.i++
		default:
			d.i++
		}
	}
	return nil, errJSONSyntax
}

// number reads a number as JSON writes it: an int when it is an integer
// that fits one, json.Number otherwise (see jqDecode).
func (d *jqDecoder) number() (any, error) {
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.digits() == 0:
		return nil, errJSONSyntax
	}
	integer := true
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, errJSONSyntax
		}
		integer = false
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, errJSONSyntax
		}
		integer = false
	}
	lit := d.b[start:d.i]
	// -0 stays json.Number: as an int it would be written 0.
	if integer && string(lit) != "-0" {
		if n, ok := smallInt(lit); ok {
			return n, nil
		}
		if n, err := strconv.ParseInt(string(lit), 10, 0); err == nil {
			return int(n), nil
		}
	}
	return json.Number(string(lit)), nil
}

// smallInt reads an integer of at most 18 digits, which cannot overflow.
func smallInt(lit []byte) (int, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	if len(lit) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range lit {
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (d *jqDecoder) digits() int {
	n := 0
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}
