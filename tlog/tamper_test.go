package tlog_test

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestTamperBattery edits the stored log directly with the driver, the way
// someone with access to the database would, and checks that the start-up
// check names the positions that changed.
func TestTamperBattery(t *testing.T) {
	cases := []struct {
		name     string
		tamper   func(ctx context.Context, t *testing.T, db *mongo.Database)
		from, to int64
	}{
		{"alter data", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.AlterData(ctx, t, db, 7, `{"r":99}`)
		}, 7, 8},
		{"delete in the middle", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.Delete(ctx, t, db, 7)
		}, 7, 8},
		{"delete a stream's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.Delete(ctx, t, db, 13) // s0's last commit
		}, 13, 13},
		{"delete the log's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.Delete(ctx, t, db, 16)
		}, 16, 16},
		{"swap positions across streams", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.SwapPositions(ctx, t, db, 13, 14)
		}, 13, 13},
		{"reorder within a commit", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.ReorderEvents(ctx, t, db, 9)
		}, 9, 10},
		{"change recordedAt", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.ShiftRecordedAt(ctx, t, db, 11, time.Nanosecond)
		}, 11, 12},
		{"recompute every later hash after an edit", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.AlterData(ctx, t, db, 7, `{"r":99}`)
			tamper.Rechain(ctx, t, db, "s1")
		}, 7, 8},
		{"recompute hashes and forge the checkpoints", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.AlterData(ctx, t, db, 7, `{"r":99}`)
			tamper.Rechain(ctx, t, db, "s1")
			// Without the signing key, a checkpoint over the edited log can
			// only be signed with another key.
			cps := db.Collection(tlog.CheckpointsCollection)
			if _, err := cps.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 7}}}}); err != nil {
				t.Fatal(err)
			}
			forger := tamper.Key(t, "forger")
			lg := tlog.New(tlog.Config{Key: forger, Logger: quiet})
			s := storetest.Store(t, db.Client(), db.Name(), eventstore.WithCommitObserver(lg.Observe))
			size, root := lg.Tree().Root()
			tamper.CloseStore(t, s)
			cp, err := tlog.Sign(forger, size, root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cps.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(size)}, {Key: "root", Value: hex.EncodeToString(root)},
				{Key: "note", Value: string(cp.Note)}}); err != nil {
				t.Fatal(err)
			}
		}, 16, 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			client, db := storetest.Client(t)
			key := tamper.Key(t, "hindsight/test")
			tamper.BuildLog(t, ctx, client, db, key)

			// Untouched, the log agrees with its checkpoints.
			s, lg := tamper.OpenLog(t, client, db, key)
			if f := lg.Fault(); f != nil {
				t.Fatalf("untouched log: %v", f)
			}
			tamper.CloseStore(t, s)

			tc.tamper(ctx, t, client.Database(db))
			s, lg = tamper.OpenLog(t, client, db, key)
			defer tamper.CloseStore(t, s)
			f := lg.Fault()
			if f == nil {
				t.Fatal("tampering not detected")
			}
			if f.From != tc.from || f.To != tc.to {
				t.Fatalf("fault %v, want positions %d to %d", f, tc.from, tc.to)
			}
			// A tampered log gets no new signature.
			if cp, _ := lg.Checkpoint(ctx); cp != nil && cp.Size > 16 {
				t.Fatalf("signed a checkpoint of size %d over a tampered log", cp.Size)
			}
		})
	}
}
