package projections

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestSizeOfIsWhatEncodingJSONWrites compares sizeOf with the length of
// json.Marshal's output, for every kind of value and every kind of
// character encoding/json escapes.
func TestSizeOfIsWhatEncodingJSONWrites(t *testing.T) {
	tests := []string{
		`null`, `true`, `false`, `0`, `-12.5e3`, `12345678901234567890`, `""`, `"plain"`,
		`"quote \" backslash \\ slash \/"`, `"\b\f\n\r\t"`, `"\u0000\u0001\u001f\u007f"`, `"<a href='x'>&amp;</a>"`,
		`"é ü 日本 🎉"`, `"\u2028\u2029"`, `"\ud800 lone surrogate"`, `{}`, `[]`, `[null,1,"x",[],{}]`,
		`{"a":1,"b":{"c":[1,2,{"d":"<"}]},"é":"\u2028"}`, `{"":""}`, `{"\n":"<>"}`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			v, err := decodeJSON([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			assertSize(t, v, sizeOf(v))
		})
	}
	// Bytes that are not UTF-8, which only a state read from elsewhere can
	// hold (encoding/json writes each as \ufffd).
	assertSize(t, map[string]any{"\xff": "a\xc3\x28b\xed\xa0\x80"}, sizeOf(map[string]any{"\xff": "a\xc3\x28b\xed\xa0\x80"}))
}

// assertSize checks a size against the value's encoding: its text is the
// encoding's length and it counts every value.
func assertSize(t *testing.T, v any, got jsonSize) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got != (jsonSize{text: len(b), values: countValues(v)}) {
		t.Fatalf("size %+v; encoding/json writes %d bytes (%s) and it holds %d values", got, len(b), b, countValues(v))
	}
}

func countValues(v any) int {
	n := 1
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			n += countValues(x)
		}
	case []any:
		for _, x := range v {
			n += countValues(x)
		}
	}
	return n
}

// TestMergeDeltaKeepsTheSize folds random patches and checks after each
// that the size kept by applySized is the state's measured size, that the
// state is what mergePatch of the same patches gives, and that changing the
// fold's own objects in place never changes a state it shared.
func TestMergeDeltaKeepsTheSize(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"a", "b", "<c>", "é"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(10); {
		case k < 4 && depth < 3:
			m := map[string]any{}
			for range r.IntN(4) {
				m[keys[r.IntN(len(keys))]] = gen(depth + 1)
			}
			return m
		case k == 4:
			return nil
		case k == 5:
			return []any{gen(depth + 1), "x"}
		case k == 6:
			return json.Number(fmt.Sprint(r.IntN(1000)))
		case k == 7:
			return r.IntN(2) == 0
		}
		return strings.Repeat("<\n", r.IntN(5))
	}
	p := MergeProjection{}
	type shared struct {
		state any
		json  string
	}
	for run := range 50 {
		state, size := p.Initial(), sizeOf(p.Initial())
		var plain any
		// As a fold does: objects it made are changed in place until the
		// state is shared, which must leave every shared state as it was.
		own := &ownedObjects{m: map[unsafe.Pointer]struct{}{}}
		var kept []shared
		for i := range 30 {
			patch := gen(0)
			if r.IntN(4) > 0 { // mostly objects, the common case
				patch = map[string]any{keys[r.IntN(len(keys))]: gen(1), keys[r.IntN(len(keys))]: gen(1)}
			}
			data, err := json.Marshal(patch)
			if err != nil {
				t.Fatal(err)
			}
			ev := eventstore.Event{Version: int64(i + 1), Data: data}
			state, size = p.applySized(state, size, ev, own)
			plain = mergePatch(plain, mustDecodeT(t, data))
			if got, want := encode(t, state), encode(t, plain); got != want {
				t.Fatalf("run %d event %d: state %s, mergePatch gives %s", run, i+1, got, want)
			}
			assertSize(t, state, size)
			if r.IntN(4) == 0 {
				kept = append(kept, shared{state, encode(t, state)})
				own.share()
			}
		}
		for i, k := range kept {
			if got := encode(t, k.state); got != k.json {
				t.Fatalf("run %d: shared state %d changed from %s to %s", run, i, k.json, got)
			}
		}
	}
}

func mustDecodeT(t *testing.T, b []byte) any {
	t.Helper()
	v, err := decodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestStateCacheStaysWithinItsBudget puts states of various sizes and
// checks after each put that the cache counts exactly what it holds, that
// this never passes its budget or its count, and which keys it keeps: the
// most recently used that fit.
func TestStateCacheStaysWithinItsBudget(t *testing.T) {
	state := func(v int64, text int) folded[any] {
		return folded[any]{version: v, size: jsonSize{text: text, values: 1}}
	}
	const budget = 10_000
	type put struct {
		key     string
		version int64
		text    int
	}
	tests := []struct {
		name string
		max  int
		puts []put
		keep []string // most recently used first
	}{
		{"all fit", 10, []put{{"a", 1, 1000}, {"b", 1, 1000}, {"c", 1, 1000}}, []string{"c", "b", "a"}},
		{"bytes evict the oldest", 10, []put{{"a", 1, 4000}, {"b", 1, 4000}, {"c", 1, 4000}}, []string{"c", "b"}},
		{"one big state evicts several", 10, []put{{"a", 1, 1000}, {"b", 1, 1000}, {"c", 1, 1000}, {"big", 1, 8000}}, []string{"big", "c"}},
		{"over the budget alone is not cached", 10, []put{{"a", 1, 1000}, {"huge", 1, budget}}, []string{"a"}},
		{"a growing state is recounted", 10, []put{{"a", 1, 1000}, {"b", 1, 1000}, {"a", 2, 9000}}, []string{"a"}},
		{"an older version is not stored", 10, []put{{"a", 2, 1000}, {"b", 1, 1000}, {"a", 1, 8000}}, []string{"a", "b"}},
		{"count bound too", 2, []put{{"a", 1, 10}, {"b", 1, 10}, {"c", 1, 10}}, []string{"c", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newStateCache[any](tc.max, budget)
			for _, p := range tc.puts {
				c.put(p.key, state(p.version, p.text))
				var sum int64
				for el := c.ll.Front(); el != nil; el = el.Next() {
					e := el.Value.(*cacheEntry[any])
					if e.cost != entryCost(e.key, e.val) {
						t.Fatalf("entry %s counted %d, costs %d", e.key, e.cost, entryCost(e.key, e.val))
					}
					sum += e.cost
				}
				if c.held() != sum || sum > budget || c.len() > tc.max || len(c.items) != c.len() {
					t.Fatalf("after put %+v: counts %d bytes, holds %d in %d entries (%d indexed)", p, c.held(), sum, c.len(), len(c.items))
				}
			}
			var keys []string
			for el := c.ll.Front(); el != nil; el = el.Next() {
				keys = append(keys, el.Value.(*cacheEntry[any]).key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.keep) {
				t.Fatalf("keeps %v, want %v", keys, tc.keep)
			}
		})
	}
}

// TestQuotedLenMatchesEncodingJSON checks every byte value, at several
// offsets in a string with other escapes.
func TestQuotedLenMatchesEncodingJSON(t *testing.T) {
	for b := range 256 {
		for at := range 17 {
			s := strings.Repeat("a", at) + string([]byte{byte(b)}) + strings.Repeat("z", 16-at) + "\u2028é"
			enc, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := quotedLen(s); got != len(enc) {
				t.Fatalf("byte %#x at %d: quotedLen %d, encoding/json writes %d", b, at, got, len(enc))
			}
		}
	}
}

func BenchmarkQuotedLen(b *testing.B) {
	s := strings.Repeat("abcdefgh", 1<<19) // 4 MiB
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		quotedLen(s)
	}
}

// TestDecodeJSONAgreesWithEncodingJSON: the merge projection decodes as
// encoding/json's Decoder with UseNumber did before, also where JSON text
// is odd: repeated names, bytes that are not UTF-8, lone surrogates,
// numbers that no float holds.
func TestDecodeJSONAgreesWithEncodingJSON(t *testing.T) {
	tests := []string{
		`{"a":1,"a":2}`, `{"a":{"b":1},"a":{"c":2}}`, "\"\xff\xfe\"", "{\"\xc3\x28\":1}", `"\ud800"`, `"\udc00x\ud83d\ude00"`,
		`12345678901234567890123`, `-0`, `1.0e+300`, `[1,[2,[3,{"x":null}]]]`, ` {"a" : [ true , false , null ] } `,
		`"\u003c\/script\u003e"`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			got, err := decodeJSON([]byte(in))
			want, wantErr := decodeJQSlow([]byte(in))
			if (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("decodeJSON %#v, %v; encoding/json %#v, %v", got, err, want, wantErr)
			}
		})
	}
}

// TestAppendJSONIsWhatEncodingJSONWrites compares appendJSON with
// json.Marshal on decoded values and on every byte in a string.
func TestAppendJSONIsWhatEncodingJSONWrites(t *testing.T) {
	values := []any{nil, true, false, "", json.Number(""), json.Number("-1.5e3"), json.Number("12345678901234567890"),
		map[string]any{}, []any{}, map[string]any{"b": 1.5, "a": []any{nil, "x", map[string]any{"<": "&"}}, "é": "\u2028\u2029"},
		"bad \xff utf-8 \xed\xa0\x80", map[string]any{"\xff": "k"}, 42}
	for b := range 256 {
		values = append(values, "a"+string([]byte{byte(b)})+"z")
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%#v: appendJSON %q, %v; json.Marshal %q", v, got, err, want)
		}
	}
}
