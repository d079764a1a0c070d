package graph_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"
)

type eventNode struct {
	ID         string
	StreamID   string
	Version    int64
	Position   string
	Type       string
	Data       json.RawMessage
	RecordedAt time.Time
}

type eventPage struct {
	Edges []struct {
		Cursor string
		Node   eventNode
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

func pos(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("position %q is not a decimal string", s)
	}
	return n
}

// TestPaginationGlobalLog pages through 1,000 events of the global log, with
// and without filters, and checks nothing is missing or repeated.
func TestPaginationGlobalLog(t *testing.T) {
	h := newHarness(t)
	var all []int64
	for i := 0; i < 10; i++ { // interleave two streams and two types
		for _, ev := range h.appendEvents(fmt.Sprintf("pg-%c", 'a'+i%2), []string{"Even", "Odd"}[i%2], i*100, 100) {
			all = append(all, ev.Position)
		}
	}
	if len(all) != 1000 {
		t.Fatalf("appended %d events", len(all))
	}

	const q = `query($after: String, $from: Position, $first: Int, $types: [String!], $prefix: String) {
		events(after: $after, afterPosition: $from, first: $first, types: $types, streamPrefix: $prefix) {
			edges { cursor node { id streamId version position type data recordedAt } }
			pageInfo { hasNextPage endCursor }
		}
	}`
	page := func(vars map[string]any) []eventNode {
		var got []eventNode
		pages := 0
		for {
			var out struct{ Events eventPage }
			h.mustDo(q, vars, &out)
			pages++
			for _, e := range out.Events.Edges {
				got = append(got, e.Node)
			}
			if !out.Events.PageInfo.HasNextPage {
				if n := len(out.Events.Edges); n > 0 && *out.Events.PageInfo.EndCursor != out.Events.Edges[n-1].Cursor {
					t.Fatal("endCursor is not the last edge's cursor")
				}
				return got
			}
			if pages > 1000 {
				t.Fatal("pagination does not end")
			}
			vars["after"] = *out.Events.PageInfo.EndCursor
		}
	}
	check := func(name string, got []eventNode, want []int64) {
		t.Helper()
		var gotPos []int64
		for _, e := range got {
			gotPos = append(gotPos, pos(t, e.Position))
		}
		if !reflect.DeepEqual(gotPos, want) {
			t.Fatalf("%s: got %d events, want %d (first got %v)", name, len(gotPos), len(want), gotPos[:min(5, len(gotPos))])
		}
	}

	check("all, pages of 137", page(map[string]any{"first": 137, "from": "0"}), all)
	check("all, one page of 1000", page(map[string]any{"first": 1000}), all)
	check("all, pages of 1", page(map[string]any{"first": 1, "from": all[995]}), all[996:])
	var even, a []int64
	for i, p := range all {
		if (i/100)%2 == 0 {
			even = append(even, p)
			a = append(a, p)
		}
	}
	check("by type", page(map[string]any{"first": 77, "types": []string{"Even"}}), even)
	check("by stream prefix", page(map[string]any{"first": 300, "prefix": "pg-a"}), a)
	check("afterPosition is exclusive", page(map[string]any{"first": 500, "from": strconv.FormatInt(all[499], 10)}), all[500:])
	check("afterPosition as Int", page(map[string]any{"first": 500, "from": all[899]}), all[900:])
	check("past the end", page(map[string]any{"first": 10, "from": all[999]}), nil)
}

// TestPaginationStream pages through a 1,000-event stream forward and
// backward.
func TestPaginationStream(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("long", "Tick", 1, 1000)
	h.appendEvents("other", "Tock", 0, 5)

	const q = `query($after: String, $v: Int, $back: Boolean, $first: Int) {
		stream(id: "long") {
			id version
			events(afterVersion: $v, backward: $back, first: $first, after: $after) {
				edges { cursor node { version data } }
				pageInfo { hasNextPage endCursor }
			}
		}
	}`
	page := func(vars map[string]any) []int64 {
		var got []int64
		for {
			var out struct {
				Stream struct {
					ID      string
					Version int64
					Events  eventPage
				}
			}
			h.mustDo(q, vars, &out)
			if out.Stream.Version != 1000 {
				t.Fatalf("stream version %d", out.Stream.Version)
			}
			for _, e := range out.Stream.Events.Edges {
				var d struct{ I int64 }
				_ = json.Unmarshal(e.Node.Data, &d)
				if d.I != e.Node.Version {
					t.Fatalf("version %d carries data %s", e.Node.Version, e.Node.Data)
				}
				got = append(got, e.Node.Version)
			}
			if !out.Stream.Events.PageInfo.HasNextPage {
				return got
			}
			if len(got) > 2000 {
				t.Fatal("pagination does not end")
			}
			vars["after"] = *out.Stream.Events.PageInfo.EndCursor
		}
	}
	seq := func(from, to int64) []int64 {
		var s []int64
		if from <= to {
			for v := from; v <= to; v++ {
				s = append(s, v)
			}
		} else {
			for v := from; v >= to; v-- {
				s = append(s, v)
			}
		}
		return s
	}
	tests := []struct {
		name string
		vars map[string]any
		want []int64
	}{
		{"forward, pages of 99", map[string]any{"first": 99}, seq(1, 1000)},
		{"forward, one page", map[string]any{"first": 1000}, seq(1, 1000)},
		{"forward after version 990", map[string]any{"first": 3, "v": 990}, seq(991, 1000)},
		{"backward, pages of 99", map[string]any{"first": 99, "back": true}, seq(1000, 1)},
		{"backward before version 11", map[string]any{"first": 4, "back": true, "v": 11}, seq(10, 1)},
		{"forward past the end", map[string]any{"first": 4, "v": 1000}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			if got := page(tc.vars); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %d versions %v..., want %d", len(got), got[:min(5, len(got))], len(tc.want))
			}
		})
	}
	t.Run("unknown stream is null", func(t *testing.T) {
		h.t = t
		data, errs := h.do(`{ stream(id: "nope") { id } }`, nil)
		if len(errs) > 0 || string(data) != `{"stream":null}` {
			t.Fatalf("data %s errors %+v", data, errs)
		}
	})
}

// TestAppendToStream checks the result of an append, idempotent replays and
// the expected-state forms.
func TestAppendToStream(t *testing.T) {
	h := newHarness(t)
	type result struct {
		AppendToStream struct {
			StreamID            string
			NextExpectedVersion int64
			FirstPosition       string
			LastPosition        string
			Events              []struct {
				ID         string
				StreamID   string
				Version    int64
				Position   string
				Type       string
				Data       json.RawMessage
				Metadata   json.RawMessage
				RecordedAt string
				Hash       string
			}
		}
	}
	id1, id2 := "0194f1c2-6d1a-7b3c-9a8e-123456789abc", "0194f1c2-6d1a-7b3c-9a8e-123456789abd"
	events := []any{
		map[string]any{"id": id1, "type": "Opened", "data": map[string]any{"owner": "ann", "limits": map[string]any{"day": 100}}, "metadata": map[string]any{"by": "test"}},
		map[string]any{"id": id2, "type": "Renamed", "data": "a string is JSON too"},
	}
	var first result
	h.mustDo(appendMutation, map[string]any{"s": "acct-9", "e": events, "st": "NO_STREAM"}, &first)
	r := first.AppendToStream
	if r.StreamID != "acct-9" || r.NextExpectedVersion != 2 || len(r.Events) != 2 ||
		pos(t, r.LastPosition) != pos(t, r.FirstPosition)+1 {
		t.Fatalf("result %+v", r)
	}
	e0 := r.Events[0]
	if e0.ID != id1 || e0.Version != 1 || e0.Type != "Opened" || string(e0.Metadata) != `{"by":"test"}` ||
		len(e0.Hash) != 64 || e0.Position != r.FirstPosition {
		t.Errorf("event %+v", e0)
	}
	if string(r.Events[1].Metadata) != "null" || string(r.Events[1].Data) != `"a string is JSON too"` {
		t.Errorf("event %+v", r.Events[1])
	}
	if _, err := time.Parse(time.RFC3339Nano, e0.RecordedAt); err != nil {
		t.Errorf("recordedAt %q: %v", e0.RecordedAt, err)
	}

	// The same append again, with the same ids: nothing new, same result.
	var again result
	h.mustDo(appendMutation, map[string]any{"s": "acct-9", "e": events, "st": "NO_STREAM"}, &again)
	if !reflect.DeepEqual(again, first) {
		t.Errorf("replay returned\n%+v\nwant\n%+v", again, first)
	}
	var next result
	h.mustDo(appendMutation, map[string]any{"s": "acct-9", "e": []any{ev("Closed", true)}, "v": 2}, &next)
	if next.AppendToStream.NextExpectedVersion != 3 {
		t.Errorf("next %+v", next)
	}
	h.mustDo(appendMutation, map[string]any{"s": "acct-9", "e": []any{ev("Noted", 1)}, "st": "STREAM_EXISTS"}, nil)
	h.mustDo(appendMutation, map[string]any{"s": "acct-9", "e": []any{ev("Noted", 2)}, "st": "ANY"}, nil)
	h.mustDo(appendMutation, map[string]any{"s": "acct-10", "e": []any{ev("Noted", 2)}, "v": 0}, nil)

	var hp struct{ HeadPosition string }
	h.mustDo(`{ headPosition }`, nil, &hp)
	if pos(t, hp.HeadPosition) != h.store.HeadPosition() {
		t.Errorf("headPosition %s, store %d", hp.HeadPosition, h.store.HeadPosition())
	}
	var v struct {
		Stream struct {
			Verify struct {
				OK                 bool `json:"ok"`
				CheckedEvents      int
				FirstBrokenVersion *int
				Reason             *string
			}
		}
	}
	h.mustDo(`{ stream(id: "acct-9") { verify { ok checkedEvents firstBrokenVersion reason } } }`, nil, &v)
	if !v.Stream.Verify.OK || v.Stream.Verify.CheckedEvents != 5 || v.Stream.Verify.FirstBrokenVersion != nil || v.Stream.Verify.Reason != nil {
		t.Errorf("verify %+v", v.Stream.Verify)
	}
}
