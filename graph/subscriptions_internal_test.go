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

// TestSlowConsumerLetsACatchingUpClientFinish: a client far behind that
// reads slowly, but steadily faster than the log grows, is not ended.
func TestSlowConsumerLetsACatchingUpClientFinish(t *testing.T) {
	s := openStore(t)
	appendN(t, s, 300)
	r := &Resolver{Store: s, Limits: Limits{SubscriberMaxLag: 20, SlowCheckInterval: 20 * time.Millisecond}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	zero := int64(0)
	sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	ch := pump[eventstore.Event](ctx, r, sub)
	for want := int64(1); want <= 300; want++ {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("ended at %d", want)
			}
			if e.Position != want {
				t.Fatalf("got position %d, want %d", e.Position, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stuck")
		}
		if want%10 == 0 {
			time.Sleep(5 * time.Millisecond) // slower than the store, not stalled
		}
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
