package eventstore_test

import (
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

func TestReads(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	// Interleave two streams: a-1 gets 10 events, b-1 gets 5.
	for i := 1; i <= 10; i++ {
		if _, err := s.Append(ctx, "a-1", eventstore.Any{}, ev("A", i)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Append(ctx, "b-1", eventstore.Any{}, ev("B", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	versions := func(evs []eventstore.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Version)
		}
		return out
	}
	streamCases := []struct {
		name string
		opts eventstore.ReadStreamOptions
		want []int64
	}{
		{"forward all", eventstore.ReadStreamOptions{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"forward after 7", eventstore.ReadStreamOptions{From: 7}, []int64{8, 9, 10}},
		{"forward limit", eventstore.ReadStreamOptions{From: 2, Limit: 3}, []int64{3, 4, 5}},
		{"forward past end", eventstore.ReadStreamOptions{From: 10}, []int64{}},
		{"backward all", eventstore.ReadStreamOptions{Backward: true, Limit: 3}, []int64{10, 9, 8}},
		{"backward before 4", eventstore.ReadStreamOptions{Backward: true, From: 4}, []int64{3, 2, 1}},
		{"backward before 1", eventstore.ReadStreamOptions{Backward: true, From: 1}, []int64{}},
	}
	for _, c := range streamCases {
		t.Run("stream/"+c.name, func(t *testing.T) {
			evs, err := s.ReadStream(ctx, "a-1", c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(evs); !equal(got, c.want) {
				t.Fatalf("versions %v, want %v", got, c.want)
			}
		})
	}
	positions := func(evs []eventstore.Event) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Position)
		}
		return out
	}
	// Positions: a-1 v1=1, v2=2, b-1 v1=3, a-1 v3=4, v4=5, b-1 v2=6, ...
	allCases := []struct {
		name string
		opts eventstore.ReadAllOptions
		want []int64
	}{
		{"first page", eventstore.ReadAllOptions{Limit: 4}, []int64{1, 2, 3, 4}},
		{"after", eventstore.ReadAllOptions{After: 13, Limit: 10}, []int64{14, 15}},
		{"types", eventstore.ReadAllOptions{Types: []string{"B"}, Limit: 10}, []int64{3, 6, 9, 12, 15}},
		{"prefix", eventstore.ReadAllOptions{StreamPrefix: "b-", After: 6, Limit: 2}, []int64{9, 12}},
		{"no match", eventstore.ReadAllOptions{StreamPrefix: "zzz"}, []int64{}},
	}
	for _, c := range allCases {
		t.Run("all/"+c.name, func(t *testing.T) {
			evs, err := s.ReadAll(ctx, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(evs); !equal(got, c.want) {
				t.Fatalf("positions %v, want %v", got, c.want)
			}
		})
	}
	h, err := s.Head(ctx, "b-1")
	if err != nil || h.Version != 5 || h.Position != 15 || h.CreatedAt.After(h.UpdatedAt) {
		t.Fatalf("head %+v, %v", h, err)
	}
	// Points in time resolve to versions.
	evs, _ := s.ReadStream(ctx, "a-1", eventstore.ReadStreamOptions{})
	resolveCases := []struct {
		name string
		at   eventstore.At
		want int64
	}{
		{"now", eventstore.Now(), 10},
		{"version", eventstore.AtVersion(4), 4},
		{"version beyond", eventstore.AtVersion(40), 10},
		{"position exact", eventstore.AtPosition(evs[5].Position), 6},
		{"position between", eventstore.AtPosition(evs[5].Position + 1), 6},
		{"position before", eventstore.AtPosition(0), 0},
		{"time of v3", eventstore.AtTime(evs[2].RecordedAt), 3},
		{"time before", eventstore.AtTime(evs[0].RecordedAt.Add(-time.Nanosecond)), 0},
	}
	for _, c := range resolveCases {
		t.Run("resolve/"+c.name, func(t *testing.T) {
			v, err := s.ResolveVersion(ctx, "a-1", c.at)
			if err != nil || v != c.want {
				t.Fatalf("version %d (%v), want %d", v, err, c.want)
			}
		})
	}
	if p := s.PositionAt(evs[2].RecordedAt); p < evs[2].Position {
		t.Fatalf("PositionAt(v3 time) = %d, want >= %d", p, evs[2].Position)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
