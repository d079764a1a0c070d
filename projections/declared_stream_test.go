package projections

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// sliceFeed is a reduction over n events of one partition; data(i) makes
// the i-th event's data when it is handed out.
type sliceFeed struct {
	n, i   int
	data   func(i int) map[string]any
	state  any
	states []string
	fault  *stepError
}

func (f *sliceFeed) input() (any, bool) {
	if f.i == f.n {
		return nil, false
	}
	f.i++
	return reducerInput(f.state, map[string]any{"version": f.i, "data": f.data(f.i)}), true
}

func (f *sliceFeed) result(next any, encoded json.RawMessage, sf *stepError) bool {
	if sf != nil {
		f.fault = sf
		return false
	}
	f.state = next
	f.states = append(f.states, string(encoded))
	return true
}

// TestStreamGoesOnAfterATimeOut: an event that runs out of time once but
// not when tried again is folded, and the stream goes on with a new gojq
// run for the events after it. The third event's reducer spins until the
// limit while now is before its data's "until", 25 ms after it is handed
// out, so the first try (50 ms) times out and the second does not.
func TestStreamGoesOnAfterATimeOut(t *testing.T) {
	prog, err := compile(Definition{Name: "x", StreamPrefix: "s-",
		Reducer: `if (.event.data.until // 0) > now then last(range(1e12)) else .state.n += 1 | .state end`}, 50*time.Millisecond, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := newReducerStream(prog)
	if err != nil {
		t.Fatal(err)
	}
	src := &sliceFeed{n: 5, state: prog.initial, data: func(i int) map[string]any {
		if i == 3 {
			return map[string]any{"until": float64(time.Now().Add(25*time.Millisecond).UnixNano()) / 1e9}
		}
		return map[string]any{}
	}}
	stream.run(src)
	if src.fault != nil || len(src.states) != 5 {
		t.Fatalf("states %v, fault %+v", src.states, src.fault)
	}
	for i, s := range src.states {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); s != want {
			t.Fatalf("state %d: %s, want %s", i+1, s, want)
		}
	}
}

// TestStreamFaults: each way a reducer fails ends the stream with that
// fault at the event, after the events before it were folded.
func TestStreamFaults(t *testing.T) {
	for _, tc := range []struct {
		reducer string
		kind    FaultKind
		msg     string
	}{
		{`if .event.version == 3 then empty else .state end`, FaultRuntimeError, "the reducer gave no value"},
		{`if .event.version == 3 then (.state, .state) else .state end`, FaultRuntimeError, "the reducer gave more than one value"},
		{`if .event.version == 3 then (.state, error("boom")) else .state end`, FaultRuntimeError, "boom"},
		{`if .event.version == 3 then error("bad") else .state end`, FaultRuntimeError, "bad"},
		{`if .event.version == 3 then [] else .state end`, FaultNotAnObject, "the reducer gave an array, not an object"},
		{`if .event.version == 3 then .state.x = ([range(100)] | tostring) | .state else .state end`, FaultStateTooLarge, "the limit is 100"},
		{`if .event.version == 3 then last(range(1e12)) else .state end`, FaultTimeout, "took longer than the limit of 20ms"},
	} {
		prog, err := compile(Definition{Name: "x", StreamPrefix: "s-", Reducer: tc.reducer}, 20*time.Millisecond, 100)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := newReducerStream(prog)
		if err != nil {
			t.Fatal(err)
		}
		src := &sliceFeed{n: 5, state: prog.initial, data: func(int) map[string]any { return nil }}
		stream.run(src)
		if len(src.states) != 2 || src.fault == nil || src.fault.kind != tc.kind || !strings.Contains(src.fault.msg, tc.msg) {
			t.Fatalf("%s: states %v, fault %+v; want 2 states and %s saying %q", tc.reducer, src.states, src.fault, tc.kind, tc.msg)
		}
	}
}
