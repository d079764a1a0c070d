package graph

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

var wireSchema = gqlparser.MustLoadSchema(&ast.Source{Input: `
scalar JSON
input NewEvent { type: String! data: JSON! metadata: JSON }
type Query { x(n: Int, s: [String!], e: [NewEvent!], j: JSON): Int }
`})

// The envelope decodes the small parameters, keeps every variable as the
// span of the body it occupies, and refuses what is not one JSON object of
// unique names.
func TestDecodeEnvelope(t *testing.T) {
	for _, c := range []struct {
		name, body string
		query      any
		vars       map[string]string // name → span
		notObject  bool
		err        string // "" = none; else a word of jsonProblem or the error
	}{
		{name: "query only", body: `{"query":"{ x }"}`, query: "{ x }"},
		{name: "spans as written", body: `{"variables": {"a" : [1, 2] ,"b":{"c":"d"}}, "query":"q"}`, query: "q",
			vars: map[string]string{"a": "[1, 2]", "b": `{"c":"d"}`}},
		{name: "null variables", body: `{"query":"q","variables":null}`, query: "q"},
		{name: "variables not an object", body: `{"query":"q","variables":[1]}`, query: "q", notObject: true},
		{name: "unknown members skipped", body: `{"query":"q","other":{"deep":[1,{"x":null}]}}`, query: "q"},
		{name: "query of another type", body: `{"query":12}`, query: json.Number("12")},
		{name: "duplicate name", body: `{"query":"q","query":"r"}`, err: "same name twice"},
		{name: "duplicate name in a variable", body: `{"query":"q","variables":{"a":{"k":1,"k":2}}}`, err: "same name twice"},
		{name: "two values", body: `{"query":"q"} {}`, err: "more than one"},
		{name: "truncated", body: `{"query":"q","variables":{"a":`, err: "EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			env, err := decodeEnvelope(body)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error()+jsonProblem(err), c.err) {
					t.Fatalf("err = %v (%q), want one saying %q", err, jsonProblem(err), c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(env.wire.Query, c.query) || env.varsNotObject != c.notObject {
				t.Fatalf("query %#v, not object %v; want %#v, %v", env.wire.Query, env.varsNotObject, c.query, c.notObject)
			}
			if len(env.vars) != len(c.vars) {
				t.Fatalf("variables %v, want %v", env.vars, c.vars)
			}
			for n, want := range c.vars {
				got := env.vars[n]
				if string(got) != want {
					t.Fatalf("variable %s = %s, want %s", n, got, want)
				}
				if !within(got, body) {
					t.Fatalf("variable %s is a copy, not a span of the body", n)
				}
			}
		})
	}
}

// Only the variables the operation declares are decoded, each along its
// type: a JSON scalar's value stays JSON text (a span of the body when it is
// already canonical), everything else decodes as encoding/json would, with
// numbers as json.Number.
func TestVariablesFor(t *testing.T) {
	body := []byte(`{"variables":{
		"n": 7,
		"s": ["a", "b"],
		"e": [{"type":"T","data":{"z":1,"a":[true,null]},"metadata":null}, {"type":"U","data":"\u00e9 x","extra":1.5}],
		"j": {"k": 1},
		"c": {"k":1},
		"undeclared": {"big": "never decoded"}
	}}`)
	env, err := decodeEnvelope(body)
	if err != nil {
		t.Fatal(err)
	}
	doc, perr := parser.ParseQuery(&ast.Source{Input: `query($n: Int, $s: [String!], $e: [NewEvent!], $j: JSON, $c: JSON, $missing: Int) { x }`})
	if perr != nil {
		t.Fatal(perr)
	}
	got, err := env.vars.variablesFor(wireSchema, doc.Operations[0], false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"n": json.Number("7"),
		"s": []any{"a", "b"},
		"e": []any{
			map[string]any{"type": "T", "data": json.RawMessage(`{"z":1,"a":[true,null]}`), "metadata": nil},
			map[string]any{"type": "U", "data": json.RawMessage(`"é x"`), "extra": json.Number("1.5")},
		},
		"j": json.RawMessage(`{"k":1}`),
		"c": json.RawMessage(`{"k":1}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("variables\n%#v\nwant\n%#v", got, want)
	}
	data := got["e"].([]any)[0].(map[string]any)["data"].(json.RawMessage)
	if !within(data, body) {
		t.Fatal("canonical JSON data was copied instead of kept as a span of the body")
	}
	if within(got["j"].(json.RawMessage), body) {
		t.Fatal(`{"k": 1} is not canonical, yet was not written anew`)
	}
	// Only an event's data and metadata, which the store copies, view the
	// body: any other JSON value is kept by whoever takes it, and the
	// body's buffer is read into again after the request.
	if within(got["c"].(json.RawMessage), body) {
		t.Fatal("a JSON value outside NewEvent is a view of the body")
	}

	// For an operation that outlives its request (an SSE stream), no
	// value views the body.
	kept, err := env.vars.variablesFor(wireSchema, doc.Operations[0], true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("copied variables\n%#v\nwant\n%#v", kept, want)
	}
	if data := kept["e"].([]any)[0].(map[string]any)["data"].(json.RawMessage); within(data, body) {
		t.Fatal("an operation that outlives its request keeps a view of the body")
	}
}

func TestCanonicalJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":"b c","d":[1,2]}`, `{"a":"b c","d":[1,2]}`},
		{`{"a" :1}`, `{"a":1}`},
		{"[1,\n2]", `[1,2]`},
		{`"a\ud83d\ude00b"`, `"a😀b"`},
		{`"\/"`, `"/"`},
		{`12.50`, `12.50`},
	} {
		got, err := canonicalJSON([]byte(c.in), false)
		if err != nil || string(got) != c.want {
			t.Errorf("canonicalJSON(%s) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
}

// within reports whether b lies inside the memory of of.
func within(b, of []byte) bool {
	if len(b) == 0 || len(of) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(of)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(of))
}
