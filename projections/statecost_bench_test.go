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
//   - 100x64KiB: {"k<i%3>": 64 KiB}, a state of 192 KiB;
//   - manykeys+99small: an object of ~300,000 members, then 99 small
//     patches of it.
//
// Run: go test ./projections -run '^$' -bench BenchmarkStreamStateLarge -benchtime 10x
func BenchmarkStreamStateLarge(b *testing.B) {
	store, _, _ := openStore(b)
	svc := openService(b, store, projections.Options{})
	ctx := ctxT(b)
	big := func(key func(int) string) func(int) eventstore.NewEvent {
		return func(i int) eventstore.NewEvent { return bigEvent(key(i), maxEventData, byte('a'+i%26)) }
	}
	threeKeys := func(i int) string { return fmt.Sprintf("k%d", i%3) }
	streams := []struct {
		id     string
		n      int
		event  func(i int) eventstore.NewEvent
		points []int64
	}{
		{"25x4MiB-3keys", 25, big(threeKeys), []int64{24, 13}},
		{"12x4MiB-1key", 12, big(func(int) string { return "k" }), []int64{11, 6}},
		{"100x64KiB-3keys", 100, func(i int) eventstore.NewEvent {
			return bigEvent(threeKeys(i), 64<<10, byte('a'+i%26))
		}, []int64{99, 50}},
		// A first event of ~300,000 small members, then small patches:
		// each patch copies the object it changes.
		{"manykeys+99small", 100, func(i int) eventstore.NewEvent {
			if i > 0 {
				return eventstore.NewEvent{Type: "Small", Data: json.RawMessage(fmt.Sprintf(`{"x":%d}`, i))}
			}
			var b strings.Builder
			b.WriteString(`{"k0":0`)
			for k := 1; b.Len() < maxEventData-32; k++ {
				fmt.Fprintf(&b, `,"k%d":0`, k)
			}
			b.WriteString("}")
			return eventstore.NewEvent{Type: "Many", Data: json.RawMessage(b.String())}
		}, []int64{99, 50}},
	}
	for _, s := range streams {
		for i := range s.n {
			if _, err := store.Append(ctx, s.id, eventstore.Exact(int64(i)), s.event(i)); err != nil {
				b.Fatalf("append %s #%d: %v", s.id, i+1, err)
			}
		}
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
