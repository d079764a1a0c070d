package graph

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// The lane rests only while an operation waits for it, for as long as the
// place was held times (1-share)/share, at most maxRest; the waiting
// operation gets the place when the rest ends, not before. The clock is the
// test's: nothing is timed.
func TestLaneRest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		share    float64
		waiter   bool
		held     time.Duration
		wantRest time.Duration // 0: the place is handed on at once
	}{
		{"alone: no rest", 0.5, false, 10 * time.Millisecond, 0},
		{"half the time", 0.5, true, 10 * time.Millisecond, 10 * time.Millisecond},
		{"a quarter of the time", 0.25, true, 10 * time.Millisecond, 30 * time.Millisecond},
		{"a long hold rests at most maxRest", 0.5, true, time.Second, maxRest},
		{"share 1: no rest", 1, true, 10 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l := newHeavyLane(tc.share)
			l.sem, l.size = semaphore.NewWeighted(1), 1 // one place, whatever GOMAXPROCS is
			clock := time.Unix(1000, 0)
			l.rest.now = func() time.Time { return clock }
			var rests []time.Duration
			var wake []func()
			l.rest.after = func(d time.Duration, f func()) { rests = append(rests, d); wake = append(wake, f) }

			held := l.ticket(ctx, nil)
			held.enter(ctx)
			if !held.isHeld() {
				t.Fatal("the first ticket did not enter the empty lane")
			}
			clock = clock.Add(tc.held)

			entered := make(chan struct{})
			if tc.waiter {
				go func() {
					w := l.ticket(ctx, nil)
					w.enter(ctx)
					if w.isHeld() {
						close(entered)
					}
				}()
				for l.waiting.Load() != 1 {
					time.Sleep(time.Millisecond) // until it waits: no assertion on time
				}
			}
			held.leave()

			if tc.wantRest == 0 {
				if len(rests) != 0 {
					t.Fatalf("rested %v, want none", rests)
				}
			} else {
				if len(rests) != 1 || rests[0] != tc.wantRest {
					t.Fatalf("rests %v, want [%v]", rests, tc.wantRest)
				}
				// The place is not handed on during the rest.
				if got := l.waiting.Load(); got != 1 {
					t.Fatalf("%d waiting during the rest, want 1", got)
				}
				if got := l.resting.Load(); got != 1 {
					t.Fatalf("%d resting, want 1", got)
				}
				wake[0]()
				if got := l.resting.Load(); got != 0 {
					t.Fatalf("%d resting after the rest, want 0", got)
				}
			}
			if tc.waiter {
				<-entered // the waiter gets the place
			} else if !l.sem.TryAcquire(1) {
				t.Fatal("the lane's place was not given back")
			}
		})
	}
}
