package eventstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestBuildFailureSaidPlainly proves that a memory image that cannot be
// built is reported with its cause and what to do, and that a store made
// to give up (as export, import and verify are) ends with that error
// instead of retrying forever.
func TestBuildFailureSaidPlainly(t *testing.T) {
	ctx := ctxT(t)
	s, client, db := openStore(t)
	if _, err := s.Append(ctx, "a", nil, ev("A", 1)); err != nil {
		t.Fatal(err)
	}
	// A commit the store cannot decode: events is not an array.
	if _, err := client.Database(db).Collection(eventstore.CommitsCollection).InsertOne(ctx,
		bson.D{{Key: "_id", Value: int64(2)}, {Key: "stream", Value: "b"}, {Key: "version", Value: int64(1)},
			{Key: "lastPosition", Value: int64(2)}, {Key: "events", Value: "broken"}}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name     string
		attempts int
	}{{"gives up after 2 attempts", 2}, {"a server keeps trying", 0}} {
		t.Run(c.name, func(t *testing.T) {
			r, err := eventstore.Open(ctx, client, db, eventstore.WithBuildAttempts(c.attempts),
				eventstore.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err = r.WaitReady(wctx)
			if c.attempts > 0 {
				if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "failed 2 times") ||
					!errors.Is(err, eventstore.ErrDamaged) || !strings.Contains(err.Error(), "_id 2") ||
					!strings.Contains(err.Error(), "restore the log from a backup") {
					t.Fatalf("WaitReady = %v; want the cause after 2 attempts, with what to do", err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("WaitReady = %v; want it still trying", err)
			}
			if p := r.Problem(); !strings.Contains(p, "building the memory image failed") || !strings.Contains(p, "times in a row") {
				t.Fatalf("Problem() = %q; want the repeated failure", p)
			}
			if n, err := r.BuildFailure(); n < 2 || err == nil {
				t.Fatalf("BuildFailure() = %d, %v; want at least 2 failures in 5s", n, err)
			}
		})
	}
}

// TestGapNamed proves that a log with missing positions is not served in
// silence: the store names them (Problem feeds /readyz and diagnostics).
func TestGapNamed(t *testing.T) {
	ctx := ctxT(t)
	s, client, db := openStore(t)
	res, err := s.Append(ctx, "a", nil, ev("A", 1), ev("A", 2), ev("A", 3))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Problem(); p != "" {
		t.Fatalf("Problem() = %q on a sound log", p)
	}
	// Positions 4 to 9 lost: a commit at 10 follows 3.
	e := res.Events[2]
	if _, err := client.Database(db).Collection(eventstore.CommitsCollection).InsertOne(ctx, bson.D{
		{Key: "_id", Value: int64(10)}, {Key: "stream", Value: "b"}, {Key: "version", Value: int64(1)},
		{Key: "lastPosition", Value: int64(10)}, {Key: "recordedAt", Value: e.RecordedAt},
		{Key: "recordedAtNs", Value: e.RecordedAt.UnixNano()},
		{Key: "events", Value: bson.A{bson.D{{Key: "id", Value: "0192f0c4-0000-7000-8000-000000000001"},
			{Key: "type", Value: "B"}, {Key: "data", Value: "1"}, {Key: "hash", Value: "x"}}}}}); err != nil {
		t.Fatal(err)
	}
	r := openOn(t, client, db)
	gaps, more := r.Gaps()
	if len(gaps) != 1 || gaps[0] != (eventstore.Gap{From: 4, To: 9}) || more != 0 {
		t.Fatalf("Gaps() = %v, %d; want [4 to 9]", gaps, more)
	}
	if p := r.Problem(); !strings.Contains(p, "positions 4 to 9 are missing") {
		t.Fatalf("Problem() = %q; want the missing positions named", p)
	}
}
