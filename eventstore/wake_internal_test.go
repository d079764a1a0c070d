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

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

func TestWakerWindow(t *testing.T) {
	w := newWaker()
	for _, tc := range []struct {
		subs int64
		want time.Duration
	}{
		{0, 0},
		{1000, 30 * time.Millisecond},  // batchPerSub each
		{5000, 100 * time.Millisecond}, // at the knee
		{8000, 120 * time.Millisecond}, // batchPerSubAbove each
		{10000, batchMax},
		{20000, batchMax},
	} {
		w.subs.Store(tc.subs)
		if got := w.window(); got != tc.want {
			t.Errorf("window with %d subscribers %v, want %v", tc.subs, got, tc.want)
		}
	}
}

// TestWakerCoalesces: a commit after a quiet spell wakes every group at
// once; commits that follow wake each group once, on its turn, within a
// window; a whole round without commits is quiet again.
func TestWakerCoalesces(t *testing.T) {
	w := newWaker()
	// Without batched subscriptions every commit wakes at once.
	for range 3 {
		ch := w.wait(0)
		w.notify()
		if !closed(ch) {
			t.Fatal("no batched subscriptions: a commit did not wake at once")
		}
	}

	w.subs.Store(10000) // a window of batchMax
	var first [wakeShards]<-chan struct{}
	for i := range first {
		first[i] = w.wait(uint32(i))
	}
	w.notify()
	for i, ch := range first {
		if !closed(ch) {
			t.Fatalf("group %d: a commit after a quiet spell did not wake at once", i)
		}
	}

	var second [wakeShards]<-chan struct{}
	for i := range second {
		second[i] = w.wait(uint32(i))
	}
	start := time.Now()
	w.notify()
	w.notify()
	if closed(second[wakeShards-1]) && time.Since(start) < batchMax/2 {
		t.Fatal("the last group was woken long before its turn")
	}
	for i, ch := range second {
		waitClosed(t, ch, "a group was never woken for the commits")
		if i == wakeShards-1 {
			if waited := time.Since(start); waited < batchMax/2 {
				t.Fatalf("the last group was woken after %v, within a window of %v", waited, batchMax)
			}
		}
	}
	// Each group was woken once for both commits.
	var third [wakeShards]<-chan struct{}
	for i := range third {
		third[i] = w.wait(uint32(i))
	}
	time.Sleep(batchMax / 4)
	for i, ch := range third {
		if closed(ch) {
			t.Fatalf("group %d woken twice for the same commits", i)
		}
	}

	// After a round without commits, the next commit wakes at once again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		running := w.running
		w.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still going round with no commits")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.notify()
	for i, ch := range third {
		if !closed(ch) {
			t.Fatalf("group %d: a commit after a quiet round did not wake at once", i)
		}
	}
}
