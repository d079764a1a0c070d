package projections

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/hindsight-dev/hindsight/eventstore"
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

// TestEventNumbersAreJQNumbers: a reducer can compute with the event's
// version and position and keep them. They were int64, which gojq does not
// know: the first arithmetic on them panicked and took the process down.
func TestEventNumbersAreJQNumbers(t *testing.T) {
	ev := eventstore.Event{ID: "e", StreamID: "cart-1", Type: "Added", Version: 7, Position: 300,
		RecordedAt: time.Unix(1700000000, 0), Data: json.RawMessage(`{"n":2}`)}
	for _, tc := range []struct{ reducer, want string }{
		{`.state.v = .event.version + 1 | .state`, `{"v":8}`},
		{`.state.late = (.event.position > 255) | .state`, `{"late":true}`},
		{`.state.p = .event.position | .state`, `{"p":300}`},
		{`.state.k = (.event.version | tostring) | .state`, `{"k":"7"}`},
		{`.state.x = .event.data.n * .event.version | .state`, `{"x":14}`},
	} {
		prog, err := compile(Definition{Name: "x", StreamPrefix: "cart-", Reducer: tc.reducer}, time.Second, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		_, got, f := prog.reduce(prog.initial, eventValue(&ev))
		if f != nil {
			t.Fatalf("%s: fault %s: %s", tc.reducer, f.kind, f.msg)
		}
		if string(got) != tc.want {
			t.Fatalf("%s: %s, want %s", tc.reducer, got, tc.want)
		}
	}
}
