package graph

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// FuzzDecodeEnvelope holds the one-pass decoder of request bodies to
// encoding/json's meaning, on any input:
//   - whatever it accepts, encoding/json accepts too;
//   - its query, operationName and extensions are what encoding/json
//     decodes (numbers as json.Number);
//   - each variable, decoded untyped (decodeAny) or at a JSON scalar's
//     position (canonicalJSON), means what encoding/json reads in that
//     member;
//   - a JSON scalar's text is compact: encoding it again with
//     json.Compact changes nothing.
//
// The seeds run with every `go test`; `go test ./graph -run '^$' -fuzz
// FuzzDecodeEnvelope -fuzztime 60s` searches further.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"query":"{ x }"}`,
		`{"query":"q","variables":{"a":[1,2.50,-0,1e400],"b":{"c":"d\u00e9\ud83d\ude00"},"j":{"x":[true,null]}}}`,
		`{"query":"q","variables":{"j":"\u2028<>&\\\"\/"},"operationName":"O","extensions":{"persistedQuery":{"version":1}}}`,
		`{"variables":{"j":{ "z" : [1, 2.50], "a":"\u00e9" }}, "query":"q"}`,
		`{"query":"q","variables":{"j":12345678901234567890123}}`,
		`{"query":"q","query":"r"}`,
		`{"query":"q","variables":[1]}`,
		` {"query":"q"} `,
		`{"query":"q"} {}`,
		"{\"query\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := decodeEnvelope(body)
		if err != nil {
			return
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("decodeEnvelope took %q, which encoding/json refuses: %v", body, err)
		}
		for name, got := range map[string]any{"query": env.wire.Query, "operationName": env.wire.OperationName, "extensions": env.wire.Extensions} {
			raw, ok := want[name]
			if !ok {
				if got != nil {
					t.Fatalf("%s = %#v, absent from %q", name, got, body)
				}
				continue
			}
			if w := decodeStd(t, raw); !reflect.DeepEqual(got, w) {
				t.Fatalf("%s = %#v, encoding/json reads %#v in %q", name, got, w, body)
			}
		}
		if env.varsNotObject {
			return
		}
		var wantVars map[string]json.RawMessage
		if raw, ok := want["variables"]; ok {
			if err := json.Unmarshal(raw, &wantVars); err != nil {
				t.Fatalf("variables %s: %v", raw, err)
			}
		}
		if len(env.vars) != len(wantVars) {
			t.Fatalf("%d variables, encoding/json reads %d in %q", len(env.vars), len(wantVars), body)
		}
		for name, raw := range env.vars {
			w := decodeStd(t, wantVars[name])
			untyped, err := rawVariables{name: raw}.variablesFor(nil, &ast.OperationDefinition{
				VariableDefinitions: ast.VariableDefinitionList{{Variable: name}}}, false)
			if err != nil {
				t.Fatalf("variable %s = %s: %v", name, raw, err)
			}
			if !reflect.DeepEqual(untyped[name], w) {
				t.Fatalf("variable %s = %#v, encoding/json reads %#v", name, untyped[name], w)
			}
			text, err := canonicalJSON(raw, true)
			if err != nil {
				t.Fatalf("canonicalJSON(%s): %v", raw, err)
			}
			if got := decodeStd(t, text); !reflect.DeepEqual(got, w) {
				t.Fatalf("canonicalJSON(%s) = %s, which means %#v, not %#v", raw, text, got, w)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, text); err != nil || !bytes.Equal(compact.Bytes(), text) {
				t.Fatalf("canonicalJSON(%s) = %s is not compact (%v)", raw, text, err)
			}
		}
	})
}

// decodeStd decodes raw as encoding/json does for variables, numbers as
// json.Number.
func decodeStd(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json on %s: %v", raw, err)
	}
	return v
}
