package graph

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// TestMain, in harness_test.go, stops the shared store.

func openStore(t *testing.T) *eventstore.Store {
	t.Helper()
	mc, db := storetest.Client(t)
	return storetest.Store(t, mc, db)
}

func appendN(t *testing.T, s *eventstore.Store, n int) {
	t.Helper()
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent{Type: "X", Data: json.RawMessage(strconv.Itoa(i))}
	}
	if _, err := s.Append(context.Background(), "s", eventstore.Any{}, evs...); err != nil {
		t.Fatal(err)
	}
}

// TestSlowConsumerEndsAStalledSubscriber: a subscription nobody drains while
// writers go on is ended with ErrSubscriberTooSlow once it is more than the
// limit behind, and its store subscription is closed; the appends all
// complete meanwhile.
func TestSlowConsumerEndsAStalledSubscriber(t *testing.T) {
	s := openStore(t)
	r := &Resolver{Store: s, Limits: Limits{SubscriberMaxLag: 20, SlowCheckInterval: 10 * time.Millisecond}}
	end := &subEnd{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), subEndKey{}, end))
	defer cancel()
	sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Subscribers
	pump[eventstore.Event](ctx, r, sub) // a direct feed: nobody drains it
	for i := 0; i < 10; i++ {
		appendN(t, s, 10)
		time.Sleep(15 * time.Millisecond)
	}
	deadline := time.After(10 * time.Second)
	for {
		end.mu.Lock()
		err := end.err
		end.mu.Unlock()
		if err != nil {
			if !errors.Is(err, eventstore.ErrSubscriberTooSlow) {
				t.Fatalf("ended with %v", err)
			}
			break
		}
		select {
		case <-deadline:
			t.Fatal("the stalled subscriber was not ended")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n := s.Stats().Subscribers; n != before-1 {
		t.Errorf("store subscribers %d, want %d: the subscription was not closed", n, before-1)
	}
}

// TestSlowWatchRule: the policy looks at each subscription's lag once per
// check. One more than the limit behind is ended only when its lag did not
// shrink since the previous check: a subscriber catching up from far behind
// is left alone however far it is, one that stalls or falls further behind
// is ended at the first check where it is over the limit and not closer than
// at the previous one, and one at the limit never. A check that finds the
// subscription in the store's Recv (a catch-up reading evicted events)
// gives no verdict and only notes the lag: it waits for the store, not for
// its client.
func TestSlowWatchRule(t *testing.T) {
	cases := []struct {
		name    string
		lags    []int64 // at each check
		reading []bool  // in Recv at each check; nil: never
		ended   int     // the check that ends it (1-based); 0 = never
	}{
		{"catching up", []int64{5000, 4000, 3000, 2000, 1000, 10, 0}, nil, 0},
		{"stalled over the limit", []int64{200, 200}, nil, 2},
		{"falling behind past the limit", []int64{50, 150, 300}, nil, 2},
		{"over, then catching up, then stalled", []int64{500, 400, 400}, nil, 3},
		{"at the limit", []int64{100, 100, 100}, nil, 0},
		{"first look over the limit", []int64{1000}, nil, 0},
		{"a store read over several checks", []int64{16384, 16384, 16384, 16000, 15000}, []bool{true, true, true, false, false}, 0},
		{"the same, not reading: ended", []int64{16384, 16384}, []bool{false, false}, 2},
		{"read, then stalled on its client", []int64{500, 500, 500}, []bool{true, false, false}, 2},
		{"stalled on its client around a read", []int64{500, 500, 500}, []bool{false, true, false}, 3},
		{"reading while falling behind, then stalled", []int64{200, 300, 300}, []bool{true, true, false}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &slowWatch{maxLag: 100, every: time.Hour, subs: map[*watched]struct{}{}, running: true} // checks by hand
			var i int
			ended := 0
			var reading func() bool
			if c.reading != nil {
				reading = func() bool { return c.reading[i] }
			}
			unwatch := s.watchReading(func() int64 { return c.lags[i] }, reading, func() { ended = i + 1 })
			defer unwatch()
			for i = range c.lags {
				s.check()
				if ended != 0 {
					break
				}
			}
			if ended != c.ended {
				t.Fatalf("ended at check %d, want %d", ended, c.ended)
			}
		})
	}
}

// TestPumpStopsWithTheClient: cancelling the operation's context ends the
// pump and closes the store subscription, whether it waits for events or
// for the client.
func TestPumpStopsWithTheClient(t *testing.T) {
	s := openStore(t)
	r := &Resolver{Store: s}
	base := s.Stats().Subscribers
	for _, blockedOnClient := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ch := pump[eventstore.Event](ctx, r, sub)
		if blockedOnClient {
			appendN(t, s, 3)
		}
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case <-drained(ch):
		case <-time.After(5 * time.Second):
			t.Fatal("the pump did not stop")
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.Stats().Subscribers != base {
			if time.Now().After(deadline) {
				t.Fatalf("subscribers %d, want %d", s.Stats().Subscribers, base)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func drained[T any](ch <-chan T) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}
