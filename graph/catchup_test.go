package graph_test

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestCatchUpFromStore: a subscriber from the start of a long log whose
// events the memory image has evicted (a budget of 1 MiB) reads them from
// the store, and gets every one exactly once and in order, over
// graphql-transport-ws and SSE, for one stream and for the global log. The
// slow-consumer policy is strict here (100 positions, every 50 ms), and the
// subscriber is far more behind than that while the store reads: it must
// not be ended for the time the store takes, only for a client that holds
// it back. Before the policy looked at where a subscription waits, a
// 16,384-event catch-up from the store was ended with SUBSCRIBER_TOO_SLOW
// before its first event.
func TestCatchUpFromStore(t *testing.T) {
	n := 4096 // 16 MiB: two catch-up windows
	if testing.Short() {
		n = 2048
	}
	env := newCatchUpEnv(t, n, 1<<20, graph.Limits{SubscriberMaxLag: 100, SlowCheckInterval: 50 * time.Millisecond})
	for _, kind := range []string{"stream", "log"} {
		for _, tr := range []string{"ws", "sse"} {
			t.Run(kind+"/"+tr, func(t *testing.T) {
				got, err := catchUp(env.srv.URL, kind, tr, n, false)
				if err != nil || got != n {
					t.Fatalf("got %d of %d events in order: %v", got, n, err)
				}
			})
		}
	}
}

// TestCatchUpMemoryBounded: a catch-up from the store over 16,384 events of
// 4 KiB (64 MiB) costs the server a bounded amount of memory, not the range:
// the live heap, as frequent collections find it while the events are
// delivered (exactly once, in order), grows by less than maxGrowth. Before
// the catch-up read the store in windows (eventstore's catchUpWindow), the
// embedded FerretDB gathered and sorted the whole range in memory and the
// live heap grew by 156 MiB (BenchmarkCatchUp/store/len=16384).
func TestCatchUpMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB of events; BenchmarkCatchUp measures the same")
	}
	const maxGrowth = 100 << 20
	env := newCatchUpEnv(t, catchUpEvents, 1<<20, graph.Limits{})
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // collections often enough to see the peak
	runtime.GC()
	base := liveHeap()
	stop := sampleHeap()
	got, err := catchUp(env.srv.URL, "log", "ws", env.n, false)
	_, live := stop()
	if err != nil || got != env.n {
		t.Fatalf("got %d of %d events in order: %v", got, env.n, err)
	}
	if growth := live - min(live, base); growth > maxGrowth {
		t.Fatalf("the live heap grew by %d MiB during the catch-up, want under %d MiB", growth>>20, maxGrowth>>20)
	} else {
		t.Logf("the live heap grew by at most %.1f MiB", float64(growth)/(1<<20))
	}
}
