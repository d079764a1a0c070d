package projections_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

// docCounter counts, with the driver's command monitor, the commands that
// read the commits and snapshots collections and the documents they return.
type docCounter struct {
	mu       sync.Mutex
	watching map[int64]bool // request ids of reads of those collections
	cmds     atomic.Int64
	docs     atomic.Int64
}

func (c *docCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			var coll string
			switch e.CommandName {
			case "find", "aggregate", "count":
				coll, _ = e.Command.Lookup(e.CommandName).StringValueOK()
			case "getMore":
				coll, _ = e.Command.Lookup("collection").StringValueOK()
			}
			if coll == eventstore.CommitsCollection || coll == eventstore.SnapshotsCollection {
				c.cmds.Add(1)
				c.mu.Lock()
				c.watching[e.RequestID] = true
				c.mu.Unlock()
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			c.mu.Lock()
			watched := c.watching[e.RequestID]
			delete(c.watching, e.RequestID)
			c.mu.Unlock()
			if !watched {
				return
			}
			for _, batch := range []string{"firstBatch", "nextBatch"} {
				if arr, ok := e.Reply.Lookup("cursor", batch).ArrayOK(); ok {
					vals, _ := arr.Values()
					c.docs.Add(int64(len(vals)))
				}
			}
		},
	}
}

// BenchmarkOrderAtVersion reads an order at version 9,999 of a 10,000-event
// stream and at version 99 of a 100-event stream. With snapshots every 100
// events both fold 99 events, so they should cost the same; the "ratio"
// sub-benchmark measures both interleaved in one loop and reports the
// latency ratio. Every sub-benchmark reports the events folded and the
// store documents fetched per read (counted with the command monitor).
func BenchmarkOrderAtVersion(b *testing.B) {
	counter := &docCounter{watching: map[int64]bool{}}
	client, err := mongo.Connect(options.Client().ApplyURI(storetest.URI(b)).SetMonitor(counter.monitor()))
	if err != nil {
		b.Fatal(err)
	}
	rb := make([]byte, 6)
	_, _ = rand.Read(rb)
	db := "bench_" + hex.EncodeToString(rb)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = client.Database(db).Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	store := openStoreOn(b, client, db)
	svc := openService(b, store, projections.Options{})
	ctx := ctxT(b)

	setup := time.Now()
	writeOrder(b, store, "big", 10000)
	writeOrder(b, store, "small", 100)
	// The projector folds every order event and writes the snapshots.
	waitFor(b, "snapshots", func() bool {
		return hasSnapshot(store, "order-big", "order", projections.OrderSchemaVersion, 9900) &&
			hasSnapshot(store, "order-small", "order", projections.OrderSchemaVersion, 100)
	})
	b.Logf("setup: 10,100 events and their snapshots in %v", time.Since(setup).Round(time.Millisecond))
	// The monitor does see reads: opening another store on the database
	// reads the log (12 commits) and the snapshots.
	docs := counter.docs.Load()
	second, err := eventstore.Open(ctx, client, db, eventstore.WithLogger(quietLog))
	if err != nil {
		b.Fatal(err)
	}
	if err := second.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	if err := second.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if counter.docs.Load()-docs < 12 {
		b.Fatalf("the command monitor counted %d documents for a store start", counter.docs.Load()-docs)
	}
	b.Logf("command monitor check: a store start fetched %d documents", counter.docs.Load()-docs)

	read := func(b *testing.B, id string, v int64) {
		o, err := svc.Order(ctx, id, eventstore.AtVersion(v))
		if err != nil || o.Version != v {
			b.Fatalf("order %s at %d: version %d, %v", id, v, o.Version, err)
		}
	}
	cases := []struct {
		name    string
		id      string
		version int64
	}{
		{"version=9999/events=10000", "big", 9999},
		{"version=99/events=100", "small", 99},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			before, cmds, docs := svc.Stats(), counter.cmds.Load(), counter.docs.Load()
			for b.Loop() {
				read(b, c.id, c.version)
			}
			after := svc.Stats()
			n := float64(b.N)
			b.ReportMetric(float64(after.EventsFolded-before.EventsFolded)/n, "events-folded/op")
			b.ReportMetric(float64(counter.docs.Load()-docs)/n, "store-docs/op")
			b.ReportMetric(float64(counter.cmds.Load()-cmds)/n, "store-reads/op")
		})
	}
	b.Run("ratio", func(b *testing.B) {
		var big, small time.Duration
		for b.Loop() {
			t := time.Now()
			read(b, "big", 9999)
			big += time.Since(t)
			t = time.Now()
			read(b, "small", 99)
			small += time.Since(t)
		}
		b.ReportMetric(float64(big)/float64(small), "latency-ratio-10000/100")
	})
}

// writeOrder appends an order of n events straight to the store, 1,000 per
// append: a create, then items added and removed in turn.
func writeOrder(b *testing.B, store *eventstore.Store, id string, n int) {
	ctx := ctxT(b)
	evs := []eventstore.NewEvent{{Type: projections.EventOrderCreated,
		Data: json.RawMessage(`{"customerId":"bench","items":[{"sku":"keep","quantity":1,"unitPriceCents":100}]}`)}}
	for i := 2; i <= n; i++ {
		if i%2 == 0 {
			evs = append(evs, eventstore.NewEvent{Type: projections.EventOrderItemAdded,
				Data: json.RawMessage(fmt.Sprintf(`{"sku":"s%d","quantity":1,"unitPriceCents":%d}`, i, i))})
		} else {
			evs = append(evs, eventstore.NewEvent{Type: projections.EventOrderItemRemoved,
				Data: json.RawMessage(fmt.Sprintf(`{"sku":"s%d"}`, i-1))})
		}
	}
	for v := 0; v < n; v += 1000 {
		batch := evs[v:min(v+1000, n)]
		if _, err := store.Append(ctx, projections.OrderStreamID(id), eventstore.Exact(int64(v)), batch...); err != nil {
			b.Fatal(err)
		}
	}
}
