package projections_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// bigEvent is an event whose data is {"<key>":"<string>"} of n bytes in all.
func bigEvent(key string, n int, fill byte) eventstore.NewEvent {
	pad := n - len(`{"":""}`) - len(key)
	return eventstore.NewEvent{Type: "Big",
		Data: json.RawMessage(`{"` + key + `":"` + strings.Repeat(string(fill), pad) + `"}`)}
}

// appendBig appends n events of size bytes each, one per append (an append
// holds at most 4 MiB), whose keys are key(i).
func appendBig(tb testing.TB, store *eventstore.Store, stream string, n, size int, key func(i int) string) {
	tb.Helper()
	ctx := ctxT(tb)
	for i := range n {
		fill := byte('a' + i%26)
		if _, err := store.Append(ctx, stream, eventstore.Exact(int64(i)), bigEvent(key(i), size, fill)); err != nil {
			tb.Fatalf("append %s #%d: %v", stream, i+1, err)
		}
	}
}

// maxEventData is the largest event data one append takes, less room for
// the rest of the event.
const maxEventData = eventstore.MaxAppendBytes - 1<<10

// BenchmarkStreamStateLarge measures Stream.state at a version on streams of
// events at the size users have: up to the 4 MiB append limit. It reports
// the time, the bytes allocated (the whole process's, as testing counts
// them) and the events folded per read, after a first read of each stream
// has folded it once and its snapshots are written.
//
//   - 25x4MiB-3keys: {"k<i%3>": 4 MiB}, a state of three 4 MiB members,
//     over the limit of Stream.state from version 2 on (so the read is an
//     error, which must be cheap too);
//   - 12x4MiB-1key: {"k": 4 MiB}, a state just under the limit at every
//     version;
//   - 100x64KiB: {"k<i%3>": 64 KiB}, a state of 192 KiB.
//
// Run: go test ./projections -run '^$' -bench BenchmarkStreamStateLarge -benchtime 10x
func BenchmarkStreamStateLarge(b *testing.B) {
	store, _, _ := openStore(b)
	svc := openService(b, store, projections.Options{})
	ctx := ctxT(b)
	threeKeys := func(i int) string { return fmt.Sprintf("k%d", i%3) }
	streams := []struct {
		id     string
		n      int
		size   int
		key    func(int) string
		points []int64
	}{
		{"25x4MiB-3keys", 25, maxEventData, threeKeys, []int64{24, 13}},
		{"12x4MiB-1key", 12, maxEventData, func(int) string { return "k" }, []int64{11, 6}},
		{"100x64KiB-3keys", 100, 64 << 10, threeKeys, []int64{99, 50}},
	}
	for _, s := range streams {
		appendBig(b, store, s.id, s.n, s.size, s.key)
		// The first read folds the stream from its start and offers its
		// snapshots; wait until the writer has handled them all.
		_, _, _ = svc.StreamState(ctx, s.id, eventstore.AtVersion(int64(s.n)))
		settleSnapshots(b, svc)
	}
	for _, s := range streams {
		for _, v := range s.points {
			b.Run(fmt.Sprintf("%s/version=%d", s.id, v), func(b *testing.B) {
				b.ReportAllocs()
				before := svc.Stats()
				var errs int
				for b.Loop() {
					if _, _, err := svc.StreamState(ctx, s.id, eventstore.AtVersion(v)); err != nil {
						if !stateTooLarge(err) {
							b.Fatal(err)
						}
						errs++
					}
				}
				after := svc.Stats()
				b.ReportMetric(float64(after.EventsFolded-before.EventsFolded)/float64(b.N), "events-folded/op")
				b.ReportMetric(float64(errs)/float64(b.N), "too-large/op")
			})
		}
	}
}

// settleSnapshots waits until the snapshot writer has done nothing for half
// a second (its counters of saved, failed and dropped snapshots stand still).
func settleSnapshots(tb testing.TB, svc *projections.Service) {
	tb.Helper()
	last, still := ^uint64(0), 0
	waitFor(tb, "snapshots written", func() bool {
		st := svc.Stats()
		n := st.SnapshotsSaved + st.SnapshotsFailed + st.SnapshotsDropped
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 100 // waitFor polls every 5 ms
	})
}
