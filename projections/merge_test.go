package projections

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
)

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := MergeProjection{}.EncodeState(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return string(b)
}

// The examples of RFC 7386, Appendix A, verbatim.
func TestMergePatchFollowsRFC7386AppendixA(t *testing.T) {
	tests := []struct{ original, patch, result string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.original+"+"+tc.patch, func(t *testing.T) {
			target := mustDecode(t, tc.original)
			before := encode(t, target)
			got := encode(t, mergePatch(target, mustDecode(t, tc.patch)))
			if got != tc.result {
				t.Errorf("got %s, want %s", got, tc.result)
			}
			if after := encode(t, target); after != before {
				t.Errorf("the target was modified: %s became %s", before, after)
			}
		})
	}
}

func TestMergeProjectionFoldsEventsFromNothing(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   string
	}{
		{"no events", nil, "null"},
		{"first object drops nulls", []string{`{"a":1,"b":null}`}, `{"a":1}`},
		{"nested merge", []string{`{"a":{"x":1}}`, `{"a":{"y":2}}`, `{"a":{"x":null}}`}, `{"a":{"y":2}}`},
		{"scalar replaces, object restarts", []string{`{"a":1}`, `5`, `{"b":2}`}, `{"b":2}`},
		{"large integers survive", []string{`{"n":12345678901234567890,"f":1.50}`}, `{"f":1.50,"n":12345678901234567890}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := MergeProjection{}
			s := p.Initial()
			for i, d := range tc.events {
				s = p.Apply(s, eventstore.Event{Version: int64(i + 1), Data: json.RawMessage(d)})
			}
			got := encode(t, s)
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			// A snapshot round trip gives the same state.
			back, err := p.DecodeState(json.RawMessage(got))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s) {
				t.Fatalf("snapshot round trip: got %#v, want %#v", back, s)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	if err := Register[Order](r, OrderProjection{}); err != nil {
		t.Fatal(err)
	}
	if err := Register[Order](r, OrderProjection{}); err == nil {
		t.Error("registering a name twice succeeded")
	}
	if _, err := Lookup[Order](r, "order"); err != nil {
		t.Errorf("lookup order: %v", err)
	}
	if _, err := Lookup[any](r, "order"); err == nil {
		t.Error("lookup with the wrong state type succeeded")
	}
	if _, err := Lookup[any](r, "merge"); err == nil {
		t.Error("lookup of an unregistered projection succeeded")
	}
	if got := DefaultRegistry().Names(); !reflect.DeepEqual(got, []string{"merge", "order"}) {
		t.Errorf("default registry holds %v", got)
	}
}
