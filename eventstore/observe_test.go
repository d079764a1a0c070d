package eventstore_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestCommitObserver: with concurrent appenders, the observer sees every
// commit exactly once, in position order, gap-free, before the append is
// acknowledged, and a new process sees the whole log again while it builds
// its image, and another process's tailer sees them too; the receipt fills
// AppendResult.
func TestCommitObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []int64 // positions, in the order observed
	observe := func(events []eventstore.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			seen = append(seen, e.Position)
		}
	}
	receipt := func(last int64) (int64, string) {
		mu.Lock()
		defer mu.Unlock()
		if int64(len(seen)) < last {
			return -1, "not observed before the reply"
		}
		return last, "root-" + strconv.FormatInt(last, 10)
	}
	s, client, db := openStore(t, eventstore.WithCommitObserver(observe), eventstore.WithAppendReceipt(receipt))
	ctx := ctxT(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := s.Append(ctx, fmt.Sprintf("o-%d", w), eventstore.Any{}, ev("E", i), ev("F", i))
				if err != nil {
					t.Error(err)
					return
				}
				if res.TreeSize != res.LastPosition || res.RootHash != "root-"+strconv.FormatInt(res.LastPosition, 10) {
					t.Errorf("receipt %d %q for last position %d", res.TreeSize, res.RootHash, res.LastPosition)
				}
			}
		}()
	}
	wg.Wait()
	checkSeen := func(what string, seen []int64) {
		t.Helper()
		if len(seen) != writers*each*2 {
			t.Fatalf("%s: observed %d events, want %d", what, len(seen), writers*each*2)
		}
		for i, p := range seen {
			if p != int64(i+1) {
				t.Fatalf("%s: event %d observed at position %d", what, i, p)
			}
		}
	}
	mu.Lock()
	checkSeen("writer", seen)
	seen = nil
	mu.Unlock()

	// A second process builds its image from the log: the observer sees
	// the whole log, in order.
	var seen2 []int64
	peer := openOn(t, client, db, eventstore.WithCommitObserver(func(events []eventstore.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			seen2 = append(seen2, e.Position)
		}
	}))
	mu.Lock()
	checkSeen("start-up", seen2)
	mu.Unlock()

	// And it follows the first one's new commits through its tailer.
	for i := 0; i < 10; i++ {
		if _, err := s.Append(ctx, "o-late", eventstore.Any{}, ev("E", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := peer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range seen2 {
		if p != int64(i+1) {
			t.Fatalf("tailer: event %d observed at position %d", i, p)
		}
	}
	if len(seen2) != writers*each*2+10 {
		t.Fatalf("tailer: observed %d events, want %d", len(seen2), writers*each*2+10)
	}
}
