package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
)

func TestSubscribeCatchUpIntoLive(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	for i := 0; i < 50; i++ {
		if _, err := s.Append(ctx, streamName("c", i%3), eventstore.Any{}, ev("Old", i)); err != nil {
			t.Fatal(err)
		}
	}
	zero, ten := int64(0), int64(10)
	cases := []struct {
		name  string
		opts  eventstore.SubscribeOptions
		match func(e eventstore.Event) bool
	}{
		{"all from 0", eventstore.SubscribeOptions{AfterPosition: &zero}, func(eventstore.Event) bool { return true }},
		{"all from 10", eventstore.SubscribeOptions{AfterPosition: &ten}, func(e eventstore.Event) bool { return e.Position > 10 }},
		{"prefix", eventstore.SubscribeOptions{AfterPosition: &zero, StreamPrefix: "c-1"}, func(e eventstore.Event) bool { return e.StreamID == "c-1" }},
		{"types", eventstore.SubscribeOptions{AfterPosition: &zero, Types: []string{"New"}}, func(e eventstore.Event) bool { return e.Type == "New" }},
		{"stream from version 0", eventstore.SubscribeOptions{StreamID: "c-2", AfterVersion: &zero}, func(e eventstore.Event) bool { return e.StreamID == "c-2" }},
		{"stream from version 10", eventstore.SubscribeOptions{StreamID: "c-2", AfterVersion: &ten}, func(e eventstore.Event) bool { return e.StreamID == "c-2" && e.Version > 10 }},
		{"live only", eventstore.SubscribeOptions{}, func(e eventstore.Event) bool { return e.Position > 50 }},
	}
	// The same, woken in batches: what is delivered must not change.
	for _, c := range cases[:len(cases):len(cases)] {
		c.name += ", batched"
		c.opts.Batched = true
		cases = append(cases, c)
	}
	subs := make([]*eventstore.Subscription, len(cases))
	for i, c := range cases {
		sub, err := s.Subscribe(ctx, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	// Concurrent writers while subscribers are catching up.
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if _, err := s.Append(ctx, streamName("c", (w+i)%3), eventstore.Any{}, ev("New", i)); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	log := readAllEvents(t, s)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []eventstore.Event
			for _, e := range log {
				if c.match(e) {
					want = append(want, e)
				}
			}
			got, err := collect(ctx, subs[i], len(want))
			if err != nil {
				t.Fatalf("after %d of %d: %v", len(got), len(want), err)
			}
			for k := range want {
				if got[k].Position != want[k].Position || got[k].ID != want[k].ID {
					t.Fatalf("event %d: got position %d, want %d", k, got[k].Position, want[k].Position)
				}
			}
			// Nothing more is delivered.
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if e, err := subs[i].Recv(short); err == nil {
				t.Fatalf("extra event at position %d", e.Position)
			}
		})
	}
}

// TestSlowSubscriberIsolated: a subscriber that stops reading delays neither
// writers nor other subscribers, and later catches up exactly.
func TestSlowSubscriberIsolated(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	zero := int64(0)
	slow, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	const n = 2000
	fastDone := make(chan error, 1)
	go func() {
		_, err := collect(ctx, fast, n)
		fastDone <- err
	}()
	for i := 0; i < n/100; i++ {
		batch := make([]eventstore.NewEvent, 100)
		for k := range batch {
			batch[k] = ev("E", i*100+k)
		}
		if _, err := s.Append(ctx, "slow-test", eventstore.Any{}, batch...); err != nil {
			t.Fatal(err)
		}
	}
	// The fast one got everything while the slow one read nothing.
	if err := <-fastDone; err != nil {
		t.Fatal(err)
	}
	if lag := slow.Lag(); lag != n {
		t.Fatalf("slow subscriber lag %d, want %d", lag, n)
	}
	got, err := collect(ctx, slow, n)
	if err != nil {
		t.Fatal(err)
	}
	checkLog(t, got)
	if slow.Lag() != 0 {
		t.Fatalf("lag after catching up: %d", slow.Lag())
	}
	// MaxLag ends a subscriber that is too far behind, with a clear error.
	limited, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero, MaxLag: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	if _, err := limited.Recv(ctx); !errors.Is(err, eventstore.ErrSubscriberTooSlow) {
		t.Fatalf("err = %v, want ErrSubscriberTooSlow", err)
	}
	// Close ends a blocked Recv.
	live, _ := s.Subscribe(ctx, eventstore.SubscribeOptions{})
	go func() { time.Sleep(20 * time.Millisecond); live.Close() }()
	if _, err := live.Recv(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("recv after close: %v", err)
	}
}

func TestTamperDetection(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "audit", eventstore.Any{}, ev("E", i), ev("F", i)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.VerifyStream(ctx, "audit")
	if err != nil || !v.OK || v.CheckedEvents != 10 {
		t.Fatalf("intact stream: %+v %v", v, err)
	}
	commits := client.Database(db).Collection(eventstore.CommitsCollection)
	// Commits hold versions 1-2, 3-4, 5-6, 7-8, 9-10.
	cases := []struct {
		name   string
		tamper func(t *testing.T)
		undo   func(t *testing.T)
		broken int64
	}{
		{"altered data", func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 5}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "events.1.data", Value: `999`}}}})
		}, func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 5}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "events.1.data", Value: `2`}}}})
		}, 6},
		{"altered type", func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 3}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "events.0.type", Value: "X"}}}})
		}, func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 3}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "events.0.type", Value: "E"}}}})
		}, 3},
		{"removed commit", func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 7}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "stream", Value: "elsewhere"}}}})
		}, func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "elsewhere"}, {Key: "version", Value: 7}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "stream", Value: "audit"}}}})
		}, 7},
		{"reordered events", func(t *testing.T) {
			swapEvents(t, commits, 9)
		}, func(t *testing.T) {
			swapEvents(t, commits, 9)
		}, 9},
		{"altered time", func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 1}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "recordedAtNs", Value: 1}}}})
		}, func(t *testing.T) {
			mustUpdate(t, commits, bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: 1}},
				bson.D{{Key: "$inc", Value: bson.D{{Key: "recordedAtNs", Value: -1}}}})
		}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.tamper(t)
			v, err := s.VerifyStream(ctx, "audit")
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.FirstBrokenVersion != c.broken || v.Reason == "" {
				t.Fatalf("verification %+v, want broken at %d", v, c.broken)
			}
			c.undo(t)
			if v, _ := s.VerifyStream(ctx, "audit"); !v.OK {
				t.Fatalf("after undo: %+v", v)
			}
		})
	}
}

func mustUpdate(t *testing.T, c *mongo.Collection, filter, update bson.D) {
	t.Helper()
	res, err := c.UpdateOne(context.Background(), filter, update)
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("tamper update: %v (matched %d)", err, res.MatchedCount)
	}
}

// swapEvents swaps the two events of the commit starting at version v.
func swapEvents(t *testing.T, c *mongo.Collection, v int64) {
	t.Helper()
	var d bson.M
	f := bson.D{{Key: "stream", Value: "audit"}, {Key: "version", Value: v}}
	if err := c.FindOne(context.Background(), f).Decode(&d); err != nil {
		t.Fatal(err)
	}
	evs := d["events"].(bson.A)
	mustUpdate(t, c, f, bson.D{{Key: "$set", Value: bson.D{{Key: "events", Value: bson.A{evs[1], evs[0]}}}}})
}

// TestStoreCloseEndsWaitingSubscriptions: a subscription waiting for events,
// batched or not, returns ErrClosed when the store closes.
func TestStoreCloseEndsWaitingSubscriptions(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	errs := make(chan error, 2)
	for _, batched := range []bool{false, true} {
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{Batched: batched})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		go func() {
			_, err := sub.Recv(ctx)
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // both are waiting
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Fatalf("Recv after Close: %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting subscription did not end when the store closed")
		}
	}
}
