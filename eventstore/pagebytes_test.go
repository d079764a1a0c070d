package eventstore_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestPagesBoundedByBytes: a page holds at most MaxPageBytes of data, so a
// page of large events is shorter than its limit, and paging on until a page
// is empty still reads every event exactly once. Each case runs on a store
// that holds every payload and on one whose payloads are all evicted (every
// page then comes from the store, where a forward read stops at the bound
// and a backward one reads only the newest commits that fit).
func TestPagesBoundedByBytes(t *testing.T) {
	ctx := ctxT(t)
	writer, client, db := openStore(t)
	big := func(v int) eventstore.NewEvent {
		// 1.5 MiB: two fit in a page (4 MiB), a third does not.
		return eventstore.NewEvent{Type: "Big", Data: json.RawMessage(`"` + strings.Repeat(fmt.Sprint(v), 3<<19-2) + `"`)}
	}
	small := func(v int) eventstore.NewEvent { return ev("Small", map[string]int{"v": v}) }
	// Positions: 1-2 big v1-2 (one commit), 3 small, 4-5 big v3-4 (one
	// commit), 6 small, 7 big v5, 8 big v6, 9 small.
	for _, a := range []struct {
		stream string
		evs    []eventstore.NewEvent
	}{
		{"big", []eventstore.NewEvent{big(1), big(2)}}, {"small", []eventstore.NewEvent{small(1)}},
		{"big", []eventstore.NewEvent{big(3), big(4)}}, {"small", []eventstore.NewEvent{small(2)}},
		{"big", []eventstore.NewEvent{big(5)}}, {"big", []eventstore.NewEvent{big(6)}},
		{"small", []eventstore.NewEvent{small(3)}},
	} {
		if _, err := writer.Append(ctx, a.stream, eventstore.Any{}, a.evs...); err != nil {
			t.Fatal(err)
		}
	}
	stores := []struct {
		name  string
		store *eventstore.Store
	}{
		{"resident", writer},
		{"evicted", openOn(t, client, db, eventstore.WithMemoryBudget(tinyBudget))},
	}
	cases := []struct {
		name string
		read func(s *eventstore.Store, after int64) ([]eventstore.Event, error)
		key  func(e eventstore.Event) int64 // what the page lists and the next read starts after
		want [][]int64
	}{
		{"log", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 1000})
		}, position, [][]int64{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}},
		{"log, limit 2", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 2})
		}, position, [][]int64{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9}}},
		{"log, type Big", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Types: []string{"Big"}, Limit: 1000})
		}, position, [][]int64{{1, 2}, {4, 5}, {7, 8}}},
		{"log, any prefix", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, AnyPrefix: []string{"sm", "nothing"}, Limit: 1000})
		}, position, [][]int64{{3, 6, 9}}},
		{"stream forward", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadStream(ctx, "big", eventstore.ReadStreamOptions{From: after, Limit: 1000})
		}, version, [][]int64{{1, 2}, {3, 4}, {5, 6}}},
		{"stream backward", func(s *eventstore.Store, after int64) ([]eventstore.Event, error) {
			return s.ReadStream(ctx, "big", eventstore.ReadStreamOptions{From: after, Backward: true, Limit: 1000})
		}, version, [][]int64{{6, 5}, {4, 3}, {2, 1}}},
	}
	for _, st := range stores {
		for _, c := range cases {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				var got [][]int64
				after := int64(0)
				for {
					page, err := c.read(st.store, after)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					var keys []int64
					bytes := 0
					for _, e := range page {
						keys = append(keys, c.key(e))
						bytes += len(e.Data) + len(e.Metadata)
					}
					if bytes > eventstore.MaxPageBytes {
						t.Fatalf("page %v holds %d bytes of data, over %d", keys, bytes, eventstore.MaxPageBytes)
					}
					got = append(got, keys)
					after = keys[len(keys)-1]
					if len(got) > 10 {
						break
					}
				}
				if !slices.EqualFunc(got, c.want, slices.Equal) {
					t.Fatalf("pages %v, want %v", got, c.want)
				}
			})
		}
	}
	if m := stores[1].store.Stats().Misses; m < uint64(len(cases)) {
		t.Fatalf("the evicted store read the store %d times: its payloads were not evicted", m)
	}
	// Whether more follow is answered from the skeleton, without a read.
	evicted := stores[1].store
	misses := evicted.Stats().Misses
	for _, c := range []struct {
		opts eventstore.ReadAllOptions
		want bool
	}{
		{eventstore.ReadAllOptions{After: 8}, true},
		{eventstore.ReadAllOptions{After: 9}, false},
		{eventstore.ReadAllOptions{After: 7, Types: []string{"Big"}}, true},
		{eventstore.ReadAllOptions{After: 8, Types: []string{"Big"}}, false},
		{eventstore.ReadAllOptions{After: 6, AnyPrefix: []string{"nothing", "sm"}}, true},
		{eventstore.ReadAllOptions{After: 9, AnyPrefix: []string{"sm"}}, false},
	} {
		if got := evicted.MoreAfter(c.opts); got != c.want {
			t.Errorf("MoreAfter(%+v) = %v, want %v", c.opts, got, c.want)
		}
	}
	if m := evicted.Stats().Misses; m != misses {
		t.Fatalf("MoreAfter read the store %d times", m-misses)
	}
}

func position(e eventstore.Event) int64 { return e.Position }
func version(e eventstore.Event) int64  { return e.Version }
