package graph_test

import (
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
	n := catchUpEvents
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
