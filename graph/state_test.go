package graph_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// mergePatch applies an RFC 7386 JSON merge patch, written here from the RFC
// independently of projections.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	} else {
		c := make(map[string]any, len(t))
		for k, v := range t {
			c[k] = v
		}
		t = c
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// fold folds the data of events in order; nil before the first one.
func fold(events []eventstore.Event) any {
	var state any
	for i, e := range events {
		var patch any
		if err := json.Unmarshal(e.Data, &patch); err != nil {
			panic(err)
		}
		if i == 0 {
			state = mergePatch(nil, patch)
		} else {
			state = mergePatch(state, patch)
		}
	}
	return state
}

// TestStreamStateAtPoints checks Stream.state at every version, at positions
// between the stream's events and at times, against folds computed here.
func TestStreamStateAtPoints(t *testing.T) {
	h := newHarness(t)
	patches := []string{
		`{"name":"ann","address":{"city":"Oslo","zip":"0150"},"tags":["a"]}`,
		`{"address":{"zip":null,"street":"Main 1"}}`,
		`{"tags":["a","b"],"score":1.5}`,
		`{"name":null,"nick":"an"}`,
		`{"address":"moved abroad"}`,
		`{"address":{"city":"Rome"}}`,
		`{"score":null,"n":12345678901234}`,
		`{"deep":{"a":{"b":{"c":1}}}}`,
		`{"deep":{"a":{"b":{"c":null,"d":[1,{"x":null}]}}}}`,
		`{}`,
	}
	var mine []eventstore.Event
	var other []eventstore.Event
	for i, p := range patches {
		res, err := h.store.Append(t.Context(), "doc-1", eventstore.Any{}, eventstore.NewEvent{Type: "Patched", Data: json.RawMessage(p)})
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, res.Events...)
		// Another stream's event between each of ours, and a pause, so
		// that positions and times fall between our events.
		other = append(other, h.appendEvents("noise", "N", i, 1)...)
		time.Sleep(3 * time.Millisecond)
	}

	const q = `query($at: PointInTime) { stream(id: "doc-1") { state(at: $at) } }`
	stateAt := func(at map[string]any) any {
		t.Helper()
		var out struct {
			Stream struct{ State json.RawMessage }
		}
		h.mustDo(q, map[string]any{"at": at}, &out)
		var v any
		if err := json.Unmarshal(out.Stream.State, &v); err != nil {
			t.Fatalf("state %s: %v", out.Stream.State, err)
		}
		return v
	}
	check := func(name string, at map[string]any, want any) {
		t.Helper()
		if got := stateAt(at); !reflect.DeepEqual(got, want) {
			t.Errorf("%s (at %v):\n got %v\nwant %v", name, at, got, want)
		}
	}

	check("now", nil, fold(mine))
	check("empty PointInTime is now", map[string]any{}, fold(mine))
	check("version 0 is null", map[string]any{"version": 0}, nil)
	check("before the first event", map[string]any{"position": strconv.FormatInt(mine[0].Position-1, 10)}, nil)
	check("before the first time", map[string]any{"time": mine[0].RecordedAt.Add(-time.Nanosecond).Format(time.RFC3339Nano)}, nil)
	for v := 1; v <= len(mine); v++ {
		want := fold(mine[:v])
		e := mine[v-1]
		check(fmt.Sprintf("version %d", v), map[string]any{"version": v}, want)
		check(fmt.Sprintf("position of version %d", v), map[string]any{"position": strconv.FormatInt(e.Position, 10)}, want)
		check(fmt.Sprintf("position after version %d", v), map[string]any{"position": other[v-1].Position}, want)
		check(fmt.Sprintf("time of version %d", v), map[string]any{"time": e.RecordedAt.Format(time.RFC3339Nano)}, want)
		if v < len(mine) {
			between := e.RecordedAt.Add(mine[v].RecordedAt.Sub(e.RecordedAt) / 2)
			check(fmt.Sprintf("time after version %d", v), map[string]any{"time": between.Format(time.RFC3339Nano)}, want)
		}
	}
	check("version beyond the end", map[string]any{"version": 999}, fold(mine))
}
