package graph_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestPagesOfLargeEvents: a page of events holds at most
// eventstore.MaxPageBytes of data, so first: 1000 over events of 1.5 MiB
// answers a few at a time (1,000 would be 1.5 GB), says that more follow,
// and paging by endCursor reads every event once, in the global log and in a
// stream, both ways.
func TestPagesOfLargeEvents(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	big := func(v int) eventstore.NewEvent {
		return eventstore.NewEvent{Type: "Big", Data: json.RawMessage(`"` + strings.Repeat(fmt.Sprint(v), 3<<19-2) + `"`)}
	}
	small := eventstore.NewEvent{Type: "Small", Data: json.RawMessage(`{}`)}
	var positions []int64
	for _, a := range []struct {
		stream string
		evs    []eventstore.NewEvent
	}{
		{"big", []eventstore.NewEvent{big(1), big(2)}}, {"small", []eventstore.NewEvent{small}},
		{"big", []eventstore.NewEvent{big(3), big(4)}}, {"small", []eventstore.NewEvent{small}},
		{"big", []eventstore.NewEvent{big(5)}}, {"big", []eventstore.NewEvent{big(6)}},
		{"small", []eventstore.NewEvent{small}},
	} {
		r, err := h.store.Append(ctx, a.stream, eventstore.Any{}, a.evs...)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Events {
			positions = append(positions, e.Position)
		}
	}
	p := func(i ...int) []int64 { // the positions of the i-th appended events (1-based)
		var out []int64
		for _, k := range i {
			out = append(out, positions[k-1])
		}
		return out
	}
	cases := []struct {
		name string
		q    string
		key  func(eventNode) int64
		want [][]int64
	}{
		{"log", `query($after: String) { events(after: $after, first: 1000) {
			edges { node { position version } } pageInfo { hasNextPage endCursor } } }`,
			func(n eventNode) int64 { return pos(t, n.Position) }, [][]int64{p(1, 2, 3), p(4, 5, 6), p(7, 8, 9)}},
		{"stream forward", `query($after: String) { stream(id: "big") { events(after: $after, first: 1000) {
			edges { node { position version } } pageInfo { hasNextPage endCursor } } } }`,
			func(n eventNode) int64 { return n.Version }, [][]int64{{1, 2}, {3, 4}, {5, 6}}},
		{"stream backward", `query($after: String) { stream(id: "big") { events(after: $after, backward: true, first: 1000) {
			edges { node { position version } } pageInfo { hasNextPage endCursor } } } }`,
			func(n eventNode) int64 { return n.Version }, [][]int64{{6, 5}, {4, 3}, {2, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [][]int64
			vars := map[string]any{}
			for len(got) < 10 {
				var out struct {
					Events eventPage
					Stream struct{ Events eventPage }
				}
				h.mustDo(c.q, vars, &out)
				page := out.Events
				if strings.HasPrefix(c.name, "stream") {
					page = out.Stream.Events
				}
				var keys []int64
				for _, e := range page.Edges {
					keys = append(keys, c.key(e.Node))
				}
				got = append(got, keys)
				if !page.PageInfo.HasNextPage {
					break
				}
				vars["after"] = *page.PageInfo.EndCursor
			}
			if !slices.EqualFunc(got, c.want, slices.Equal) {
				t.Fatalf("pages %v, want %v", got, c.want)
			}
		})
	}
}
