package tlog_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/tlog"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Shutdown()
	os.Exit(code)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testKey(t testing.TB, name string) *tlog.Key {
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

// openLog opens a store on db fed into a fresh verifiable log, and starts
// the log (its start-up check).
func openLog(t testing.TB, client *mongo.Client, db string, key *tlog.Key) (*eventstore.Store, *tlog.Log) {
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

func closeStore(t testing.TB, s *eventstore.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// buildLog writes 16 events in 12 commits to 4 streams, round-robin, with a
// checkpoint after every commit:
//
//	round 1: s0=1  s1=2    s2=3    s3=4
//	round 2: s0=5,6 s1=7,8 s2=9,10 s3=11,12   (two events per commit)
//	round 3: s0=13 s1=14   s2=15   s3=16
func buildLog(t *testing.T, ctx context.Context, client *mongo.Client, db string, key *tlog.Key) {
	t.Helper()
	s, lg := openLog(t, client, db, key)
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
	closeStore(t, s)
}

// chainHash is the stream-chain hash as eventstore's documentation defines
// it, written here from the documentation: an attacker can do the same.
func chainHash(prev string, stream string, version int64, id, typ string, data, meta []byte, at time.Time) string {
	h := sha256.New()
	p, _ := hex.DecodeString(prev)
	if len(p) == 0 {
		p = make([]byte, 32)
	}
	h.Write(p)
	for _, f := range [][]byte{[]byte(stream), []byte(strconv.FormatInt(version, 10)), []byte(id), []byte(typ), data, meta,
		[]byte(at.UTC().Format(time.RFC3339Nano))} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(f)))
		h.Write(l[:])
		h.Write(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type storedEvent struct {
	ID       string `bson:"id"`
	Type     string `bson:"type"`
	Data     string `bson:"data"`
	Metadata string `bson:"metadata,omitempty"`
	Hash     string `bson:"hash"`
}

type storedCommit struct {
	ID           int64         `bson:"_id"`
	Version      int64         `bson:"version"`
	RecordedAtNs int64         `bson:"recordedAtNs"`
	Events       []storedEvent `bson:"events"`
}

// rechain recomputes every hash of a stream as stored, the way someone who
// edited an event would cover it up.
func rechain(ctx context.Context, t *testing.T, commits *mongo.Collection, stream string) {
	var docs []storedCommit
	cur, err := commits.Find(ctx, bson.D{{Key: "stream", Value: stream}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Version < docs[j].Version })
	prev := ""
	for _, d := range docs {
		at := time.Unix(0, d.RecordedAtNs).UTC()
		for i := range d.Events {
			e := &d.Events[i]
			prev = chainHash(prev, stream, d.Version+int64(i), e.ID, e.Type, []byte(e.Data), []byte(e.Metadata), at)
			e.Hash = prev
		}
		update(ctx, t, commits, d.ID, bson.D{{Key: "events", Value: d.Events}})
	}
}

func update(ctx context.Context, t *testing.T, c *mongo.Collection, id int64, set bson.D) {
	t.Helper()
	if r, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil || r.MatchedCount != 1 {
		t.Fatalf("update %d: %v %+v", id, err, r)
	}
}

func deleteCommit(ctx context.Context, t *testing.T, c *mongo.Collection, id int64) {
	t.Helper()
	if r, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("delete %d: %v %+v", id, err, r)
	}
}

func getCommit(ctx context.Context, t *testing.T, c *mongo.Collection, id int64) bson.M {
	t.Helper()
	var d bson.M
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

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
			update(ctx, t, db.Collection("commits"), 7, bson.D{{Key: "events.0.data", Value: `{"r":99}`}})
		}, 7, 8},
		{"delete in the middle", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			deleteCommit(ctx, t, db.Collection("commits"), 7)
		}, 7, 8},
		{"delete a stream's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			deleteCommit(ctx, t, db.Collection("commits"), 13) // s0's last commit
		}, 13, 13},
		{"delete the log's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			deleteCommit(ctx, t, db.Collection("commits"), 16)
		}, 16, 16},
		{"swap positions across streams", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			c := db.Collection("commits")
			a, b := getCommit(ctx, t, c, 13), getCommit(ctx, t, c, 14)
			deleteCommit(ctx, t, c, 13)
			deleteCommit(ctx, t, c, 14)
			a["_id"], a["lastPosition"], b["_id"], b["lastPosition"] = int64(14), int64(14), int64(13), int64(13)
			if _, err := c.InsertMany(ctx, []any{b, a}); err != nil {
				t.Fatal(err)
			}
		}, 13, 13},
		{"reorder within a commit", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			c := db.Collection("commits")
			evs := getCommit(ctx, t, c, 9)["events"].(bson.A)
			update(ctx, t, c, 9, bson.D{{Key: "events", Value: bson.A{evs[1], evs[0]}}})
		}, 9, 10},
		{"change recordedAt", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			c := db.Collection("commits")
			ns := getCommit(ctx, t, c, 11)["recordedAtNs"].(int64)
			update(ctx, t, c, 11, bson.D{{Key: "recordedAtNs", Value: ns + 1}})
		}, 11, 12},
		{"recompute every later hash after an edit", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			c := db.Collection("commits")
			update(ctx, t, c, 7, bson.D{{Key: "events.0.data", Value: `{"r":99}`}})
			rechain(ctx, t, c, "s1")
		}, 7, 8},
		{"recompute hashes and forge the checkpoints", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			c := db.Collection("commits")
			update(ctx, t, c, 7, bson.D{{Key: "events.0.data", Value: `{"r":99}`}})
			rechain(ctx, t, c, "s1")
			// Without the signing key, a checkpoint over the edited log can
			// only be signed with another key.
			cps := db.Collection(tlog.CheckpointsCollection)
			if _, err := cps.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 7}}}}); err != nil {
				t.Fatal(err)
			}
			forger := testKey(t, "forger")
			lg := tlog.New(tlog.Config{Key: forger, Logger: quiet})
			s := storetest.Store(t, db.Client(), db.Name(), eventstore.WithCommitObserver(lg.Observe))
			size, root := lg.Tree().Root()
			closeStore(t, s)
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
			key := testKey(t, "hindsight/test")
			buildLog(t, ctx, client, db, key)

			// Untouched, the log agrees with its checkpoints.
			s, lg := openLog(t, client, db, key)
			if f := lg.Fault(); f != nil {
				t.Fatalf("untouched log: %v", f)
			}
			closeStore(t, s)

			tc.tamper(ctx, t, client.Database(db))
			s, lg = openLog(t, client, db, key)
			defer closeStore(t, s)
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
