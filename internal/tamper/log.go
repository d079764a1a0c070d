package tamper

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/tlog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Key returns a fresh signing key named name.
func Key(t testing.TB, name string) *tlog.Key {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// OpenLog opens a store on db fed into a fresh verifiable log, and starts
// the log (its start-up check).
func OpenLog(t testing.TB, client *mongo.Client, db string, key *tlog.Key) (*eventstore.Store, *tlog.Log) {
	t.Helper()
	lg := tlog.New(tlog.Config{Key: key, Interval: time.Hour, Every: 1 << 40, Logger: quiet})
	s := storetest.Store(t, client, db, eventstore.WithCommitObserver(lg.Observe), eventstore.WithAppendReceipt(lg.Receipt))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lg.Start(ctx, client.Database(db)); err != nil {
		t.Fatal(err)
	}
	return s, lg
}

// CloseStore closes s.
func CloseStore(t testing.TB, s *eventstore.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// BuildLog writes 16 events in 12 commits to 4 streams, round-robin, with a
// checkpoint after every commit:
//
//	round 1: s0=1  s1=2    s2=3    s3=4
//	round 2: s0=5,6 s1=7,8 s2=9,10 s3=11,12   (two events per commit)
//	round 3: s0=13 s1=14   s2=15   s3=16
func BuildLog(t testing.TB, ctx context.Context, client *mongo.Client, db string, key *tlog.Key) {
	t.Helper()
	s, lg := OpenLog(t, client, db, key)
	for round := 0; round < 3; round++ {
		for st := 0; st < 4; st++ {
			evs := []eventstore.NewEvent{{Type: "T", Data: []byte(fmt.Sprintf(`{"r":%d}`, round))}}
			if round == 1 {
				evs = append(evs, eventstore.NewEvent{Type: "U", Data: []byte(`{"second":true}`)})
			}
			res, err := s.Append(ctx, fmt.Sprintf("s%d", st), eventstore.Any{}, evs...)
			if err != nil {
				t.Fatal(err)
			}
			if res.TreeSize != res.LastPosition || len(res.RootHash) != 64 {
				t.Fatalf("receipt %d %q for last position %d", res.TreeSize, res.RootHash, res.LastPosition)
			}
			if _, err := lg.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	CloseStore(t, s)
}
