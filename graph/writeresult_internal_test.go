package graph

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestWriteResultAsEncodingJSON: writeResult writes what json.Marshal wrote
// for every shape of response plain HTTP answers, byte for byte (the data
// here has no < > &, which json.Marshal would escape and writeResult leaves
// as they are).
func TestWriteResultAsEncodingJSON(t *testing.T) {
	yes := true
	errs := gqlerror.List{{Message: "boom", Path: ast.Path{ast.PathName("a")}, Extensions: map[string]any{"code": CodeBadUserInput}}}
	for _, c := range []struct {
		name string
		resp *graphql.Response
	}{
		{"data", &graphql.Response{Data: json.RawMessage(`{"a":{"b":[1,2,"x"]}}`)}},
		{"errors and data", &graphql.Response{Errors: errs, Data: json.RawMessage(`{"a":null}`)}},
		{"errors, no data", &graphql.Response{Errors: errs}},
		{"extensions", &graphql.Response{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3, "b": "x"}}},
		{"incremental", &graphql.Response{Data: json.RawMessage(`{"a":1}`), Label: "l", HasNext: &yes}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, err := json.Marshal(c.resp)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			writeResult(rec, c.resp)
			if rec.Code != 200 || rec.Body.String() != string(want) {
				t.Fatalf("status %d, body %s\nwant 200, %s", rec.Code, rec.Body, want)
			}
		})
	}
}
