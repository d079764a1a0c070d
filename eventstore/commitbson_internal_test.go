package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A commit encoded ahead is the same document, byte for byte, as the
// driver makes of the struct, and fits the size reserved for it.
func TestCommitBSON(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	event := func(i int, data, meta string) Event {
		return Event{ID: fmt.Sprintf("0192f0c4-0000-7000-8000-%012d", i), StreamID: "order-42", Version: int64(3 + i),
			Position: int64(1000 + i), Type: "Paid", Data: json.RawMessage(data), Metadata: json.RawMessage(meta),
			RecordedAt: at, Hash: strings.Repeat("ab", 32)}
	}
	for _, c := range []struct {
		name   string
		events []Event
	}{
		{"one event", []Event{event(0, `1`, "")}},
		{"metadata", []Event{event(0, `{"a":"ストリーム"}`, `{"by":"x"}`), event(1, `null`, "")}},
		{"many events", func() []Event {
			var evs []Event
			for i := range 1000 {
				evs = append(evs, event(i, `"`+strings.Repeat("y", 4000)+`"`, map[bool]string{true: `{"k":1}`}[i%3 == 0]))
			}
			return evs
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := toDoc(c.events)
			want, err := bson.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			size := d.bsonSize()
			got := d.appendBSON(make([]byte, 0, size))
			if !bytes.Equal(got, want) {
				t.Fatalf("encoded ahead:\n%.300s\nthe driver:\n%.300s", got, bson.Raw(want))
			}
			if len(got) > size {
				t.Fatalf("%d bytes, %d reserved: the buffer grew", len(got), size)
			}
			var back commitDoc
			if err := bson.Unmarshal(got, &back); err != nil || back.Version != d.Version || len(back.Events) != len(d.Events) {
				t.Fatalf("decoded back: %+v, %v", back.Events[:min(1, len(back.Events))], err)
			}
		})
	}
}

// FuzzCommitBSON: for any strings in a commit's fields and any number of
// events, the commit encoded ahead is the driver's encoding byte for byte
// and fits its reserved size.
func FuzzCommitBSON(f *testing.F) {
	f.Add("order-42", "Paid", `{"a":"ストリーム"}`, "", uint8(8), int64(1000))
	f.Add("s", "", "\x00\xff", `{"by":"x"}`, uint8(20), int64(-1))
	f.Fuzz(func(t *testing.T, stream, typ, data, meta string, n uint8, pos int64) {
		at := time.Unix(0, pos).UTC()
		evs := make([]Event, int(n)%40+1)
		for i := range evs {
			evs[i] = Event{ID: fmt.Sprint(i, typ), StreamID: stream, Version: int64(i + 1), Position: pos + int64(i),
				Type: typ, Data: json.RawMessage(data), Metadata: json.RawMessage(meta), RecordedAt: at, Hash: data + meta}
		}
		d := toDoc(evs)
		want, err := bson.Marshal(d)
		if err != nil {
			t.Skip(err) // not a document the driver encodes either
		}
		size := d.bsonSize()
		got := d.appendBSON(make([]byte, 0, size))
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded ahead:\n%q\nthe driver:\n%q", got, want)
		}
		if len(got) > size {
			t.Fatalf("%d bytes, %d reserved: the buffer grew", len(got), size)
		}
	})
}
