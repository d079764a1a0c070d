package eventstore_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// TestEventIDIndexProbe records why event ids are reserved in a collection
// of their own: FerretDB v1.24 accepts a unique index on the ids inside an
// array but does not enforce it across documents (MongoDB does). If a later
// FerretDB enforces it, this test fails, and the reservations could give way
// to the index.
func TestEventIDIndexProbe(t *testing.T) {
	if os.Getenv(storetest.EnvURI) != "" {
		t.Skip("probes the embedded FerretDB")
	}
	client, db := storetest.Client(t)
	ctx := ctxT(t)
	c := client.Database(db).Collection("probe")
	if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "events.id", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("event_id")}); err != nil {
		t.Fatalf("create the multikey index: %v", err)
	}
	doc := func(id int64, eventIDs ...string) bson.D {
		var evs bson.A
		for _, e := range eventIDs {
			evs = append(evs, bson.D{{Key: "id", Value: e}})
		}
		return bson.D{{Key: "_id", Value: id}, {Key: "events", Value: evs}}
	}
	if _, err := c.InsertOne(ctx, doc(1, "a", "b")); err != nil {
		t.Fatal(err)
	}
	_, err := c.InsertOne(ctx, doc(2, "c", "a"))
	if err != nil {
		t.Fatalf("FerretDB now enforces a unique multikey index across documents (%v): reconsider eventids.go", err)
	}
}

// TestEventIDsUnique proves that an event id is unique in the whole log and
// that the store, not only the memory image, enforces it: each refused
// append writes nothing.
func TestEventIDsUnique(t *testing.T) {
	ctx := ctxT(t)
	s, client, db := openStore(t)
	commits := client.Database(db).Collection(eventstore.CommitsCollection)
	ids := client.Database(db).Collection(eventstore.EventIDsCollection)
	const x, y, z = "0192f0c4-0000-7000-8000-0000000000a1", "0192f0c4-0000-7000-8000-0000000000a2", "0192f0c4-0000-7000-8000-0000000000a3"
	orig, err := s.Append(ctx, "xs-a", nil, evID(x, "A", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "q", nil, ev("Q", 1)); err != nil {
		t.Fatal(err)
	}
	reserve := func(id, stream string, version int64, age time.Duration) {
		t.Helper()
		if _, err := ids.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "stream", Value: stream},
			{Key: "version", Value: version}, {Key: "sum", Value: "other"}, {Key: "at", Value: time.Now().Add(-age)}}); err != nil {
			t.Fatal(err)
		}
	}
	// y: reserved a moment ago for q at version 5, which is not written:
	// an append in flight elsewhere.
	reserve(y, "q", 5, 0)
	// z: reserved for q at version 1, which holds another event: stale.
	reserve(z, "q", 1, 0)

	for _, c := range []struct {
		name    string
		stream  string
		events  []eventstore.NewEvent
		wantErr error
	}{
		{"the same id in another stream", "xs-b", []eventstore.NewEvent{evID(x, "A", 1)}, eventstore.ErrDuplicateEventID},
		{"the same id in another stream, second of two", "xs-b",
			[]eventstore.NewEvent{evID("0192f0c4-0000-7000-8000-0000000000b1", "A", 1), evID(x, "A", 1)}, eventstore.ErrDuplicateEventID},
		{"an id reserved by an append in flight", "xs-c", []eventstore.NewEvent{evID(y, "A", 1)}, eventstore.ErrStoreUnavailable},
		{"a retry of the original", "xs-a", []eventstore.NewEvent{evID(x, "A", 1)}, nil},
		{"an id whose reservation is stale", "xs-d", []eventstore.NewEvent{evID(z, "A", 1)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := commits.CountDocuments(ctx, bson.D{})
			res, err := s.Append(ctx, c.stream, nil, c.events...)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			after, _ := commits.CountDocuments(ctx, bson.D{})
			switch {
			case c.wantErr != nil && after != before:
				t.Fatalf("%d commits before, %d after: the refused append was written", before, after)
			case c.name == "a retry of the original" && (res.FirstPosition != orig.FirstPosition || after != before):
				t.Fatalf("retry got position %d (commits %d -> %d), want the original %d and nothing written",
					res.FirstPosition, before, after, orig.FirstPosition)
			}
		})
	}
	// Once y's reservation is older than its time to live, its id is free.
	if _, err := ids.UpdateOne(ctx, bson.D{{Key: "_id", Value: y}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: time.Now().Add(-time.Hour)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "xs-c", nil, evID(y, "A", 1)); err != nil {
		t.Fatalf("append of an id whose reservation expired: %v", err)
	}
	seen := map[string]int{}
	for _, e := range readAllEvents(t, s) {
		seen[e.ID]++
		if seen[e.ID] > 1 {
			t.Fatalf("event id %s is stored twice", e.ID)
		}
	}
	if seen[x] != 1 || seen[y] != 1 || seen[z] != 1 {
		t.Fatalf("ids stored: x %d, y %d, z %d times; want once each", seen[x], seen[y], seen[z])
	}
}

// TestEventIDsUniqueAcrossInstances races two instances, each appending the
// same ids to streams of its own: every id is stored exactly once, and the
// losers are told ErrDuplicateEventID (or, while the winner's append is in
// flight, ErrStoreUnavailable).
func TestEventIDsUniqueAcrossInstances(t *testing.T) {
	ctx := ctxT(t)
	a, client, db := openStore(t)
	b := openOn(t, client, db)
	const n = 30
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i, s := range []*eventstore.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < n; k++ {
				id := fmt.Sprintf("0192f0c4-0000-7000-8000-%012d", k)
				_, err := s.Append(ctx, fmt.Sprintf("race-%d-%d", i, k), nil, evID(id, "R", k))
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, eventstore.ErrDuplicateEventID), errors.Is(err, eventstore.ErrStoreUnavailable):
				default:
					t.Errorf("append %d on writer %d: %v", k, i, err)
				}
			}
		}()
	}
	wg.Wait()
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range readAllEvents(t, a) {
		count[e.ID]++
	}
	if wins.Load() != n {
		t.Fatalf("%d appends succeeded, want %d: one per id", wins.Load(), n)
	}
	for k := 0; k < n; k++ {
		id := fmt.Sprintf("0192f0c4-0000-7000-8000-%012d", k)
		if count[id] != 1 {
			t.Fatalf("event id %s is stored %d times, want once", id, count[id])
		}
	}
}

// TestImportRefusesDuplicateIDs: a log that uses an id twice (written before
// ids were reserved, here by removing a reservation by hand) cannot be
// imported, and the refused page writes nothing.
func TestImportRefusesDuplicateIDs(t *testing.T) {
	ctx := ctxT(t)
	src, client, db := openStore(t)
	const x = "0192f0c4-0000-7000-8000-0000000000c1"
	if _, err := src.Append(ctx, "a", nil, ev("A", 1), ev("A", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Append(ctx, "a", nil, evID(x, "A", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Database(db).Collection(eventstore.EventIDsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: x}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Append(ctx, "b", nil, evID(x, "A", 3)); err != nil {
		t.Fatalf("append of a reused id whose reservation was removed: %v", err)
	}
	log := readAllEvents(t, src)

	dst, dclient, ddb := openStore(t)
	err := dst.Import(ctx, log)
	if !errors.Is(err, eventstore.ErrInvalidArgument) || !strings.Contains(err.Error(), "event id "+x+" is used twice") {
		t.Fatalf("import: %v; want the reused id refused", err)
	}
	if n, _ := dclient.Database(ddb).Collection(eventstore.CommitsCollection).CountDocuments(ctx, bson.D{}); n != 0 || dst.HeadPosition() != 0 {
		t.Fatalf("the refused import wrote %d commits (head %d)", n, dst.HeadPosition())
	}
	// Without the duplicate it imports.
	if err := dst.Import(ctx, log[:3]); err != nil {
		t.Fatalf("import of the log before the reused id: %v", err)
	}
}
