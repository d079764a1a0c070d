// Package tamper edits a stored log directly with the driver, the way someone
// with write access to the database would, for the tests of the verifiable
// log (package tlog, hindsight verify, the witness). It knows the commits
// collection's layout as eventstore documents it, and recomputes hash chains
// from eventstore's documented formula, as an attacker could.
package tamper

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Commits is the collection of the log.
func Commits(db *mongo.Database) *mongo.Collection { return db.Collection("commits") }

// Set sets fields of the commit whose _id (first position) is id.
func Set(ctx context.Context, t testing.TB, db *mongo.Database, id int64, set bson.D) {
	t.Helper()
	if r, err := Commits(db).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}}); err != nil || r.MatchedCount != 1 {
		t.Fatalf("tamper: update %d: %v %+v", id, err, r)
	}
}

// AlterData replaces the data of the commit's first event.
func AlterData(ctx context.Context, t testing.TB, db *mongo.Database, id int64, data string) {
	Set(ctx, t, db, id, bson.D{{Key: "events.0.data", Value: data}})
}

// Delete removes the commit whose first position is id.
func Delete(ctx context.Context, t testing.TB, db *mongo.Database, id int64) {
	t.Helper()
	if r, err := Commits(db).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil || r.DeletedCount != 1 {
		t.Fatalf("tamper: delete %d: %v %+v", id, err, r)
	}
}

// Get returns the raw commit document.
func Get(ctx context.Context, t testing.TB, db *mongo.Database, id int64) bson.M {
	t.Helper()
	var d bson.M
	if err := Commits(db).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatalf("tamper: get %d: %v", id, err)
	}
	return d
}

// SwapPositions swaps the positions of two one-event commits a and b.
func SwapPositions(ctx context.Context, t testing.TB, db *mongo.Database, a, b int64) {
	t.Helper()
	da, dbb := Get(ctx, t, db, a), Get(ctx, t, db, b)
	Delete(ctx, t, db, a)
	Delete(ctx, t, db, b)
	da["_id"], da["lastPosition"], dbb["_id"], dbb["lastPosition"] = b, b, a, a
	if _, err := Commits(db).InsertMany(ctx, []any{dbb, da}); err != nil {
		t.Fatal(err)
	}
}

// ReorderEvents swaps the first two events of a commit.
func ReorderEvents(ctx context.Context, t testing.TB, db *mongo.Database, id int64) {
	evs := Get(ctx, t, db, id)["events"].(bson.A)
	Set(ctx, t, db, id, bson.D{{Key: "events", Value: bson.A{evs[1], evs[0]}}})
}

// ShiftRecordedAt moves a commit's exact time by d.
func ShiftRecordedAt(ctx context.Context, t testing.TB, db *mongo.Database, id int64, d time.Duration) {
	ns := Get(ctx, t, db, id)["recordedAtNs"].(int64)
	Set(ctx, t, db, id, bson.D{{Key: "recordedAtNs", Value: ns + int64(d)}})
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

// Rechain recomputes every hash of a stream as stored, the way someone who
// edited an event would cover it up, so that the hash chains verify again.
func Rechain(ctx context.Context, t testing.TB, db *mongo.Database, stream string) {
	t.Helper()
	var docs []storedCommit
	cur, err := Commits(db).Find(ctx, bson.D{{Key: "stream", Value: stream}})
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
			prev = ChainHash(prev, stream, d.Version+int64(i), e.ID, e.Type, []byte(e.Data), []byte(e.Metadata), at)
			e.Hash = prev
		}
		Set(ctx, t, db, d.ID, bson.D{{Key: "events", Value: d.Events}})
	}
}

// ChainHash is the stream-chain hash as eventstore's documentation defines
// it, written from the documentation (prev "" for a stream's first event).
func ChainHash(prev string, stream string, version int64, id, typ string, data, meta []byte, at time.Time) string {
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
