package eventstore

import (
	"context"
	"encoding/json"
	"io"
	"sync/atomic"
	"time"
	"unsafe"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// commitDoc is how one append is stored: a single document, so an append is
// all-or-nothing on any store, with or without transactions (guarantee 1).
type commitDoc struct {
	ID           int64      `bson:"_id"`          // global position of the first event
	Stream       string     `bson:"stream"`       // stream id
	Version      int64      `bson:"version"`      // version of the first event
	LastPosition int64      `bson:"lastPosition"` // global position of the last event
	RecordedAt   time.Time  `bson:"recordedAt"`   // for people and tools; milliseconds
	RecordedAtNs int64      `bson:"recordedAtNs"` // the exact time, Unix nanoseconds
	Events       []eventDoc `bson:"events"`
}

type eventDoc struct {
	ID       string `bson:"id"`
	Type     string `bson:"type"`
	Data     string `bson:"data"`               // JSON text, compact; hashed as stored
	Metadata string `bson:"metadata,omitempty"` // JSON text or absent
	Hash     string `bson:"hash"`
}

func (d *commitDoc) events() []Event {
	at := time.Unix(0, d.RecordedAtNs).UTC()
	out := make([]Event, len(d.Events))
	for i, e := range d.Events {
		var meta json.RawMessage
		if e.Metadata != "" {
			meta = json.RawMessage(e.Metadata)
		}
		out[i] = Event{
			ID: e.ID, StreamID: d.Stream, Version: d.Version + int64(i), Position: d.ID + int64(i),
			Type: e.Type, Data: json.RawMessage(e.Data), Metadata: meta, RecordedAt: at, Hash: e.Hash,
		}
	}
	return out
}

func toDoc(events []Event) *commitDoc {
	first, last := events[0], events[len(events)-1]
	d := &commitDoc{
		ID: first.Position, Stream: first.StreamID, Version: first.Version, LastPosition: last.Position,
		RecordedAt: first.RecordedAt.Truncate(time.Millisecond), RecordedAtNs: first.RecordedAt.UnixNano(),
		Events: make([]eventDoc, len(events)),
	}
	for i, e := range events {
		d.Events[i] = eventDoc{ID: e.ID, Type: e.Type, Data: sharedString(e.Data), Metadata: sharedString(e.Metadata), Hash: e.Hash}
	}
	return d
}

// sharedString is b as a string that shares b's bytes instead of copying
// them. toDoc's document lives only for the insert, which encodes it to
// BSON, and an event's bytes are never written after prepare made them (the
// image and every reader share them read-only), so the string stays
// immutable as long as it is used: a 4 MiB event is not copied once more for
// nothing.
func sharedString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// load builds the memory image with one sequential read of the log, logging
// progress, and loads the snapshot index. With a memory budget smaller than
// the log, apply evicts as it goes: the skeleton and the most recently
// written payloads stay.
func (s *Store) load(ctx context.Context) error {
	// The count is only for the progress log, and FerretDB answers it with
	// a scan as long as the read itself, so it runs alongside the read.
	var total atomic.Int64
	go func() {
		if n, err := s.commits.EstimatedDocumentCount(ctx); err == nil {
			total.Store(n)
		}
	}()
	s.log.Info("building memory image")
	cur, err := s.findCommits(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: s.img.head.Load()}}}},
		"", s.img.head.Load(), openEnded)
	if err != nil {
		return err
	}
	defer cur.close(ctx)
	start, lastLog := time.Now(), time.Now()
	var n, events int64
	for {
		d, err := cur.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h := s.img.head.Load(); d.ID > h+1 {
			s.noteGap(h+1, d.ID-1)
		}
		evs := d.events()
		s.img.apply(evs, true)
		n++
		events += int64(len(evs))
		if time.Since(lastLog) >= time.Second {
			lastLog = time.Now()
			pct := -1.0 // not known yet
			if t := total.Load(); t > 0 {
				pct = min(100, float64(n)*100/float64(t))
			}
			is := s.img.stats()
			s.log.Info("building memory image", "commits", n, "events", events,
				"percent", int(pct), "events_per_sec", int(float64(events)/time.Since(start).Seconds()),
				"resident_bytes", is.bytes, "evicted", is.evicted)
		}
	}
	return s.loadSnapshots(ctx)
}
