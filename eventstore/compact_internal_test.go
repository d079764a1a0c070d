package eventstore

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// compactJSON gives what json.Compact gives, valid or not, on compact input
// (the fast path: a check and a copy) and on input with white space (the
// reformatting path), and its result never shares the caller's bytes.
func TestCompactJSONAsEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":1}`, `{"a":"b c","d":[1,2.50e3,-0,true,null]}`, ` {"b" : 1, "a":"x\u00e9\n", "a": [1 , 2]} `,
		`{"a":"q\" x\\","b":2}`, `{"a":"q\\\" x"}`, `["\\\\"]`, "\"\xff\"", `"\/"`, "[\n1,\t2\r]", `"` + strings.Repeat("x", 1<<16) + `"`,
		`{"a":1}x`, `[1,]`, "1 2", `"abc`, `{"a" 1}`, `{"a":"b`, `nul`,
	} {
		var want bytes.Buffer
		werr := json.Compact(&want, []byte(in))
		raw := []byte(in)
		got, err := compactJSON(raw)
		if (err != nil) != (werr != nil) || (err == nil && !bytes.Equal(got, want.Bytes())) {
			t.Errorf("compactJSON(%.40q) = %.40q, %v; json.Compact: %.40q, %v", in, got, err, want.Bytes(), werr)
		}
		if err == nil && len(got) > 0 && &got[0] == &raw[0] {
			t.Errorf("compactJSON(%.40q) shares the caller's bytes", in)
		}
	}
}

// FuzzCompactJSON: on any input, compactJSON accepts what json.Compact
// accepts and gives the same bytes (white space is all it may remove), and
// never hands back the caller's own bytes. The seeds run with every
// `go test`; `-fuzz FuzzCompactJSON` searches further.
func FuzzCompactJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, ` {"b" : 1, "a":"x\u00e9\n", "a": [1 , 2]} `, `{"a":"q\\\" x"}`, "\"\xff\"", "[\n1,\t2\r]", `{"a":1}x`, `"abc`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(bytes.TrimSpace(raw)) == 0 {
			return // no data: nil, as for an event without metadata
		}
		var want bytes.Buffer
		werr := json.Compact(&want, raw)
		got, err := compactJSON(raw)
		if (err != nil) != (werr != nil) || err == nil && !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("compactJSON(%q) = %q, %v; json.Compact: %q, %v", raw, got, err, want.Bytes(), werr)
		}
		if err == nil && len(got) > 0 && &got[0] == &raw[0] {
			t.Fatalf("compactJSON(%q) shares the caller's bytes", raw)
		}
	})
}
