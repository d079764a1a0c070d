package eventstore

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// A reservation in the store's own insert command is the document the
// driver makes of the struct, byte for byte, and fits the size reserved for
// it; the command carries the write concern as the driver writes it.
func TestIDDocBSON(t *testing.T) {
	at := time.Date(2026, 11, 30, 4, 0, 0, 123456789, time.UTC)
	docs := []idDoc{
		{ID: "0192f0c4-0000-7000-8000-0000000000a1", Stream: "order-42", Version: 7, Sum: strings.Repeat("ab", 12), At: at},
		{ID: "0192f0c4-0000-7000-8000-0000000000a2/3", Stream: "ストリーム", Version: 1 << 40, Sum: "", At: at},
	}
	for _, d := range docs {
		if n := len(d.appendBSON(nil, "49999")); n > d.bsonSize() {
			t.Fatalf("%s: %d bytes, bsonSize %d", d.ID, n, d.bsonSize())
		}
	}
	for _, c := range []struct {
		name string
		wc   *writeconcern.WriteConcern
		want bson.D
	}{
		{"no write concern", nil, nil},
		{"majority, journaled", &writeconcern.WriteConcern{W: "majority", Journal: new(true)},
			bson.D{{Key: "w", Value: "majority"}, {Key: "j", Value: true}}},
		{"w:2", &writeconcern.WriteConcern{W: 2}, bson.D{{Key: "w", Value: int32(2)}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			size := 0
			for _, d := range docs {
				size += d.bsonSize()
			}
			cmd := insertCommand("eventids", c.wc, docs, size)
			want := bson.D{{Key: "insert", Value: "eventids"}, {Key: "documents", Value: bson.A{docs[0], docs[1]}}, {Key: "ordered", Value: false}}
			if c.want != nil {
				want = append(want, bson.E{Key: "writeConcern", Value: c.want})
			}
			wantRaw, err := bson.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cmd, wantRaw) {
				t.Fatalf("the store's command:\n%v\nthe driver's encoding:\n%v", cmd, bson.Raw(wantRaw))
			}
			if len(cmd) > size+len("eventids")+128 {
				t.Fatalf("%d bytes, %d reserved: the buffer grew", len(cmd), size+len("eventids")+128)
			}
		})
	}
}
