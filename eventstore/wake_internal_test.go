package eventstore

import (
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWakerCoalesces: a commit after a quiet spell wakes at once; commits
// that follow within the window wake once, together, when it has passed.
func TestWakerCoalesces(t *testing.T) {
	w := newWaker()
	if w.window() != 0 {
		t.Fatalf("window with no subscribers %v", w.window())
	}
	w.subs.Store(5000)
	if got := w.window(); got != batchMax {
		t.Fatalf("window with 5,000 subscribers %v, want %v", got, batchMax)
	}
	w.subs.Store(1000)
	if got := w.window(); got != 1000*batchPerSub {
		t.Fatalf("window with 1,000 subscribers %v, want %v", got, 1000*batchPerSub)
	}

	first, other := w.wait(0), w.wait(wakeShards+1)
	w.notify()
	if !closed(first) || !closed(other) {
		t.Fatal("a commit after a quiet spell did not wake at once")
	}
	w.subs.Store(5000) // a window of batchMax, long enough to look before it ends
	second := w.wait(0)
	start := time.Now()
	w.notify()
	w.notify()
	w.notify()
	if closed(second) && time.Since(start) < batchMax {
		t.Fatal("commits within the window woke before it passed")
	}
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the held wake-up never came")
	}
	if waited := time.Since(start); waited < batchMax/2 {
		t.Fatalf("woken after %v, within a window of %v", waited, batchMax)
	}
	// One wake-up covered the three commits: the next channel is open.
	if third := w.wait(0); closed(third) {
		t.Fatal("woken twice")
	}
}
