package eventstore

import (
	"context"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Head returns the head of a stream, or ErrStreamNotFound. It is served from
// memory.
func (s *Store) Head(ctx context.Context, streamID string) (StreamHead, error) {
	if err := s.checkOpen(); err != nil {
		return StreamHead{}, &Error{Op: "head", StreamID: streamID, Err: err}
	}
	evs := s.img.streamEvents(streamID)
	if len(evs) == 0 {
		return StreamHead{}, &Error{Op: "head", StreamID: streamID, Err: ErrStreamNotFound}
	}
	s.stats.hits.Add(1)
	first, last := evs[0], evs[len(evs)-1]
	return StreamHead{StreamID: streamID, Version: last.Version, Position: last.Position,
		CreatedAt: first.RecordedAt, UpdatedAt: last.RecordedAt}, nil
}

func limitOf(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultReadLimit, nil
	case n < 0 || n > MaxReadLimit:
		return 0, invalid("limit must be between 1 and %d, got %d", MaxReadLimit, n)
	}
	return n, nil
}

// ReadStream reads a page of one stream. A stream without events reads as an
// empty page, not an error; use Head to tell whether a stream exists.
func (s *Store) ReadStream(ctx context.Context, streamID string, opts ReadStreamOptions) ([]Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, &Error{Op: "read stream", StreamID: streamID, Err: err}
	}
	limit, err := limitOf(opts.Limit)
	if err != nil {
		return nil, &Error{Op: "read stream", StreamID: streamID, Err: err}
	}
	if opts.From < 0 {
		return nil, &Error{Op: "read stream", StreamID: streamID, Err: invalid("version must not be negative")}
	}
	s.stats.hits.Add(1)
	evs := s.img.streamEvents(streamID)
	var out []Event
	if !opts.Backward {
		// Versions are 1..n, so version v sits at index v-1.
		for i := int(min(opts.From, int64(len(evs)))); i < len(evs) && len(out) < limit; i++ {
			out = append(out, *evs[i])
		}
		return out, nil
	}
	end := len(evs)
	if opts.From > 0 {
		end = int(min(opts.From-1, int64(len(evs))))
	}
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, *evs[i])
	}
	return out, nil
}

// ReadAll reads a page of the global log in position order, served from memory.
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) ([]Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	limit, err := limitOf(opts.Limit)
	if err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	s.stats.hits.Add(1)
	out, _ := s.img.readAll(opts.After, newFilter(opts.Types, opts.StreamPrefix, ""), limit)
	return out, nil
}

// ResolveVersion returns the version a stream had at a point: the last
// version at or before it, or 0 when the stream had no events then.
func (s *Store) ResolveVersion(ctx context.Context, streamID string, at At) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, &Error{Op: "resolve", StreamID: streamID, Err: err}
	}
	evs := s.img.streamEvents(streamID)
	return resolveIn(evs, at), nil
}

func resolveIn(evs []*Event, at At) int64 {
	n := len(evs)
	switch at.kind {
	case atVersion:
		return max(0, min(at.version, int64(n)))
	case atPosition:
		return int64(sort.Search(n, func(i int) bool { return evs[i].Position > at.position }))
	case atTime:
		return int64(sort.Search(n, func(i int) bool { return evs[i].RecordedAt.After(at.time) }))
	}
	return int64(n)
}

// PositionAt returns the last global position recorded at or before t, or 0.
// Because recordedAt never decreases with position, "as of t" is the prefix
// of the log up to this position.
func (s *Store) PositionAt(t time.Time) int64 { return s.img.positionAt(t) }

// VerifyStream checks the stream's hash chain as stored. Unlike other reads
// it reads the store, not the memory image: tampering happens in the store,
// and the image was built from it at start. On MongoDB it is an indexed read
// of the stream's commits; on FerretDB a scan.
func (s *Store) VerifyStream(ctx context.Context, streamID string) (Verification, error) {
	cur, err := s.commits.Find(ctx, bson.D{{Key: "stream", Value: streamID}},
		options.Find().SetSort(bson.D{{Key: "version", Value: 1}}))
	if err != nil {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: classify(err)}
	}
	defer cur.Close(ctx)
	var docs []commitDoc
	if err := cur.All(ctx, &docs); err != nil {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: classify(err)}
	}
	var events []Event
	for i := range docs {
		events = append(events, docs[i].events()...)
	}
	if len(events) == 0 {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: ErrStreamNotFound}
	}
	return verifyChain(events), nil
}

// verifyChain checks versions 1..n in order and every hash link.
func verifyChain(events []Event) Verification {
	prev := ""
	var lastPos int64
	for i := range events {
		e := &events[i]
		want := int64(i + 1)
		broken := func(reason string) Verification {
			return Verification{OK: false, CheckedEvents: i, FirstBrokenVersion: want, Reason: reason}
		}
		switch {
		case e.Version > want:
			return broken("event missing: version " + itoa(want) + " is not stored")
		case e.Version < want:
			return broken("duplicate or inserted event at version " + itoa(e.Version))
		case e.Position <= lastPos:
			return broken("event out of order: position " + itoa(e.Position) + " does not follow " + itoa(lastPos))
		}
		if h := eventHash(prev, e); h != e.Hash {
			return broken("hash mismatch: the event or one before it was altered, removed, inserted or reordered")
		}
		prev, lastPos = e.Hash, e.Position
	}
	return Verification{OK: true, CheckedEvents: len(events)}
}
