package projections

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// appendJSON appends a decoded JSON value (map[string]any, []any, string,
// json.Number, bool or nil) exactly as json.Marshal writes it: members
// sorted by name, strings with json.Marshal's escapes (HTML characters,
// U+2028 and U+2029, invalid UTF-8 as \ufffd). It exists for speed:
// json.Marshal reflects on every value and sorts an object's members as
// reflect.Values, most of the time of a Stream.state read of a state of many
// small members (TestAppendJSONIsWhatEncodingJSONWrites pins the equality).
// Anything else goes to json.Marshal.
func appendJSON(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return appendQuoted(dst, v), nil
	case json.Number:
		// A state's numbers are literals its decoder read, so valid (the
		// check json.Marshal makes cannot fail); "" is the zero Number.
		if v == "" {
			return append(dst, '0'), nil
		}
		return append(dst, v...), nil
	case map[string]any:
		// Sorted as name-value pairs: sorting the names and looking each
		// up again cost as much as the sort.
		members := make([]member, 0, len(v))
		for k, x := range v {
			members = append(members, member{k, x})
		}
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
		dst = append(dst, '{')
		for i, m := range members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendQuoted(dst, m.name), ':')
			var err error
			if dst, err = appendJSON(dst, m.value); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case []any:
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSON(dst, x); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	// Not a decoded value.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

type member struct {
	name  string
	value any
}

// appendQuoted appends s as json.Marshal writes a string (see quotedLen).
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if asciiGrowth[b] == 0 {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}
