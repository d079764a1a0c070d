package eventstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// VerifyStream reads the commits as stored BSON: metadata is part of the
// chain, and a commit whose fields have the wrong types is ErrDamaged, not a
// verification that passes or a panic.
func TestVerifyStoredCommits(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	meta := eventstore.NewEvent{Type: "M", Data: json.RawMessage(`{"a":1}`), Metadata: json.RawMessage(`{"by":"ストリーム"}`)}
	for i := 0; i < 3; i++ {
		if _, err := s.Append(ctx, "checked", eventstore.Any{}, meta, ev("E", i)); err != nil {
			t.Fatal(err)
		}
	}
	commits := client.Database(db).Collection(eventstore.CommitsCollection)
	at3 := bson.D{{Key: "stream", Value: "checked"}, {Key: "version", Value: 3}}
	for _, c := range []struct {
		name          string
		tamper, undo  bson.D
		broken        int64 // 0: the stream verifies
		wantDamaged   bool
		checkedEvents int
	}{
		{name: "intact", checkedEvents: 6},
		{name: "altered metadata",
			tamper: bson.D{{Key: "$set", Value: bson.D{{Key: "events.0.metadata", Value: `{"by":"someone else"}`}}}},
			undo:   bson.D{{Key: "$set", Value: bson.D{{Key: "events.0.metadata", Value: `{"by":"ストリーム"}`}}}},
			broken: 3, checkedEvents: 2},
		{name: "removed metadata",
			tamper: bson.D{{Key: "$unset", Value: bson.D{{Key: "events.0.metadata", Value: ""}}}},
			undo:   bson.D{{Key: "$set", Value: bson.D{{Key: "events.0.metadata", Value: `{"by":"ストリーム"}`}}}},
			broken: 3, checkedEvents: 2},
		{name: "data of another type",
			tamper:      bson.D{{Key: "$set", Value: bson.D{{Key: "events.1.data", Value: 7}}}},
			undo:        bson.D{{Key: "$set", Value: bson.D{{Key: "events.1.data", Value: `1`}}}},
			wantDamaged: true},
		{name: "events not an array",
			tamper:      bson.D{{Key: "$set", Value: bson.D{{Key: "events", Value: "none"}}}},
			wantDamaged: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var saved bson.M
			if c.tamper != nil {
				if err := commits.FindOne(ctx, at3).Decode(&saved); err != nil {
					t.Fatal(err)
				}
				mustUpdate(t, commits, at3, c.tamper)
				t.Cleanup(func() {
					if _, err := commits.ReplaceOne(ctx, bson.D{{Key: "_id", Value: saved["_id"]}}, saved); err != nil {
						t.Fatal(err)
					}
				})
			}
			v, err := s.VerifyStream(ctx, "checked")
			if c.wantDamaged {
				if !errors.Is(err, eventstore.ErrDamaged) {
					t.Fatalf("verification %+v, %v; want ErrDamaged", v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.OK != (c.broken == 0) || v.FirstBrokenVersion != c.broken || v.CheckedEvents != c.checkedEvents {
				t.Fatalf("verification %+v, want broken at %d after %d events", v, c.broken, c.checkedEvents)
			}
		})
	}
	if v, err := s.VerifyStream(ctx, "checked"); err != nil || !v.OK || v.CheckedEvents != 6 {
		t.Fatalf("after the undos: %+v, %v", v, err)
	}
}
