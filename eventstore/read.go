package eventstore

import (
	"context"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Head returns the head of a stream, or ErrStreamNotFound. It is served from
// the image's skeleton, which is never evicted.
func (s *Store) Head(ctx context.Context, streamID string) (StreamHead, error) {
	if err := s.checkOpen(); err != nil {
		return StreamHead{}, &Error{Op: "head", StreamID: streamID, Err: err}
	}
	h, ok := s.img.headOf(streamID)
	if !ok {
		return StreamHead{}, &Error{Op: "head", StreamID: streamID, Err: ErrStreamNotFound}
	}
	s.stats.hits.Add(1)
	return h, nil
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
//
// It is served from memory when the page is resident. Otherwise it reads the
// page from the store (an index range on stream_version) and puts it back
// into the image if the budget allows, so the next read hits.
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
	out, lo, hi, from, ok := s.img.streamPage(streamID, opts, limit)
	if ok {
		s.stats.hits.Add(1)
		return out, nil
	}
	s.stats.misses.Add(1)
	out, err = s.fetchStream(ctx, streamID, from, lo, hi)
	if err != nil {
		return nil, &Error{Op: "read stream", StreamID: streamID, Err: err}
	}
	s.img.fill(streamID, out, false)
	if opts.Backward {
		reverse(out)
	}
	return out, nil
}

// ReadAll reads a page of the global log in position order. The page is
// found in the image's skeleton; the events whose payloads are evicted are
// read from the store with one range read on _id, and are not put back into
// the image (a reader paging through the log would flush it).
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) ([]Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	limit, err := limitOf(opts.Limit)
	if err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	out, miss, _ := s.img.logPage(opts.After, newFilter(opts.Types, opts.StreamPrefix, ""), limit, nil)
	if len(miss) == 0 {
		s.stats.hits.Add(1)
		return out, nil
	}
	s.stats.misses.Add(1)
	got, err := s.fetchLog(ctx, miss)
	if err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	return mergeByPosition(out, got), nil
}

// ResolveVersion returns the version a stream had at a point: the last
// version at or before it, or 0 when the stream had no events then. It is
// served from the skeleton.
func (s *Store) ResolveVersion(ctx context.Context, streamID string, at At) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, &Error{Op: "resolve", StreamID: streamID, Err: err}
	}
	return s.img.resolve(streamID, at), nil
}

// PositionAt returns the last global position recorded at or before t, or 0.
// Because recordedAt never decreases with position, "as of t" is the prefix
// of the log up to this position.
func (s *Store) PositionAt(t time.Time) int64 { return s.img.positionAt(t) }

// RecordedAt returns when the event at position p was recorded, from the
// image's skeleton (so even when its payload is evicted), and false when the
// image does not hold p.
func (s *Store) RecordedAt(p int64) (time.Time, bool) { return s.img.recordedAt(p) }

// VerifyStream checks the stream's hash chain as stored. Unlike other reads
// it reads the store, not the memory image: tampering happens in the store,
// and the image was built from it at start. On MongoDB it is an indexed read
// of the stream's commits; on FerretDB a scan. It streams the commits, with
// replies bounded by bytes, and holds one commit at a time.
func (s *Store) VerifyStream(ctx context.Context, streamID string) (Verification, error) {
	cur, err := s.findCommits(ctx, bson.D{{Key: "stream", Value: streamID}}, streamID, 0, openEnded)
	if err != nil {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: err}
	}
	defer cur.close(ctx)
	var c chainCheck
	for {
		d, err := cur.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: err}
		}
		for _, e := range d.events() {
			if v, ok := c.check(&e); !ok {
				return v, nil
			}
		}
	}
	if c.n == 0 {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: ErrStreamNotFound}
	}
	return Verification{OK: true, CheckedEvents: c.n}, nil
}

// chainCheck checks a stream's events, in the order stored, for versions
// 1..n in order and every hash link.
type chainCheck struct {
	n       int
	prev    string
	lastPos int64
}

// check checks the next event; when it breaks the chain, ok is false and v
// says where and why.
func (c *chainCheck) check(e *Event) (v Verification, ok bool) {
	want := int64(c.n + 1)
	broken := func(reason string) (Verification, bool) {
		return Verification{OK: false, CheckedEvents: c.n, FirstBrokenVersion: want, Reason: reason}, false
	}
	switch {
	case e.Version > want:
		return broken("event missing: version " + itoa(want) + " is not stored")
	case e.Version < want:
		return broken("duplicate or inserted event at version " + itoa(e.Version))
	case e.Position <= c.lastPos:
		return broken("event out of order: position " + itoa(e.Position) + " does not follow " + itoa(c.lastPos))
	}
	if h := eventHash(c.prev, e); h != e.Hash {
		return broken("hash mismatch: the event or one before it was altered, removed, inserted or reordered")
	}
	c.n, c.prev, c.lastPos = c.n+1, e.Hash, e.Position
	return Verification{}, true
}
