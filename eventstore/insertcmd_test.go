package eventstore_test

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// TestReservationsInSeveralCommands: the event id reservations of one append
// split into several insert commands (3 documents each here) keep every
// guarantee of one: a duplicate id in a later command is found at its own
// place and refuses the whole append, which writes no commit; an append of
// fresh ids reserves every one of them; its retry returns the original
// result and writes nothing.
func TestReservationsInSeveralCommands(t *testing.T) {
	defer eventstore.SetInsertChunkDocs(3)()
	ctx := ctxT(t)
	s, client, db := openStore(t)
	commits := client.Database(db).Collection(eventstore.CommitsCollection)
	ids := client.Database(db).Collection(eventstore.EventIDsCollection)
	id := func(i int) string { return fmt.Sprintf("0192f0c4-0000-7000-8000-%012d", i) }
	if _, err := s.Append(ctx, "taken", nil, evID(id(108), "T", 0)); err != nil {
		t.Fatal(err)
	}
	batch := func(dup bool) []eventstore.NewEvent {
		evs := make([]eventstore.NewEvent, 10)
		for i := range evs {
			evs[i] = evID(id(100+i), "E", i)
		}
		if !dup {
			for i := range evs {
				evs[i].ID = id(200 + i)
			}
		}
		return evs
	}
	_, err := s.Append(ctx, "many", nil, batch(true)...) // id 108 is the 9th: the third command
	if !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("append with a duplicate id in its third command: %v, want ErrDuplicateEventID", err)
	}
	if n, _ := commits.CountDocuments(ctx, bson.D{{Key: "stream", Value: "many"}}); n != 0 {
		t.Fatalf("%d commits of the refused append are stored", n)
	}
	orig, err := s.Append(ctx, "many", nil, batch(false)...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if n, _ := ids.CountDocuments(ctx, bson.D{{Key: "_id", Value: id(200 + i)}, {Key: "stream", Value: "many"},
			{Key: "version", Value: int64(i + 1)}}); n != 1 {
			t.Fatalf("event %d: %d reservations for its place, want 1", i, n)
		}
	}
	before, _ := commits.CountDocuments(ctx, bson.D{})
	again, err := s.Append(ctx, "many", nil, batch(false)...)
	after, _ := commits.CountDocuments(ctx, bson.D{})
	if err != nil || again.FirstPosition != orig.FirstPosition || after != before {
		t.Fatalf("retry: %v, position %d (original %d), commits %d -> %d", err, again.FirstPosition, orig.FirstPosition, before, after)
	}
}

// TestWithWriteConcern: the reservations' own insert command carries the
// write concern the store is given, which the store accepts only
// acknowledged.
func TestWithWriteConcern(t *testing.T) {
	ctx := ctxT(t)
	for _, c := range []struct {
		name string
		wc   *writeconcern.WriteConcern
	}{
		{"majority", writeconcern.Majority()},
		{"w:1, journaled", &writeconcern.WriteConcern{W: 1, Journal: new(true)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _, _ := openStore(t, eventstore.WithWriteConcern(c.wc))
			if _, err := s.Append(ctx, "wc", nil, ev("E", 1), ev("E", 2)); err != nil {
				t.Fatal(err)
			}
		})
	}
	client, db := storetest.Client(t)
	if _, err := eventstore.Open(ctx, client, db, eventstore.WithWriteConcern(writeconcern.Unacknowledged())); err == nil {
		t.Fatal("Open with an unacknowledged write concern succeeded")
	}
}
