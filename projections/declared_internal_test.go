package projections

import (
	"fmt"
	"testing"

	"github.com/itchyny/gojq"
)

// TestPlainPathAgreesWithJQ: the partition key's fast path gives what jq
// gives, or leaves the case to jq.
func TestPlainPathAgreesWithJQ(t *testing.T) {
	inputs := []any{nil, map[string]any{}, map[string]any{"data": nil}, map[string]any{"data": "s"},
		map[string]any{"data": map[string]any{"customerId": "c-1"}}, map[string]any{"data": map[string]any{"customerId": 7.0}},
		map[string]any{"data": []any{1}}}
	for _, tc := range []struct {
		src   string
		plain bool
	}{
		{".data.customerId", true}, {".data", true}, {`.data["customerId"]`, false}, {".data?.customerId", false},
		{".data.customerId // 1", false}, {".data[]", false}, {"def f: .; f", false}, {".data | .customerId", false},
	} {
		q, err := gojq.Parse(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		path := plainPath(q)
		if (path != nil) != tc.plain {
			t.Fatalf("%s: plain path %v, want plain %v", tc.src, path, tc.plain)
		}
		code, _ := gojq.Compile(q)
		for _, in := range inputs {
			got, ok := followPath(in, path)
			if !ok {
				continue
			}
			want, _ := code.Run(in).Next()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s on %v: fast path %v, jq %v", tc.src, in, got, want)
			}
		}
	}
}
