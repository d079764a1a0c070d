package eventstore

import (
	"context"
	"sort"
	"time"
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

// ReadStream reads a page of one stream: at most opts.Limit events and
// MaxPageBytes of their data (see the read limits). A stream without events
// reads as an empty page, not an error; use Head to tell whether a stream
// exists.
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
		return out[:pageLen(out)], nil
	}
	s.stats.misses.Add(1)
	maxBytes := MaxPageBytes
	if opts.Backward {
		// The page ends at hi: read only the newest commits that can fit.
		lo, from = s.img.backwardSpan(streamID, lo, hi, from)
		maxBytes = 0
	}
	out, err = s.fetchStream(ctx, streamID, from, lo, hi, maxBytes)
	if err != nil {
		return nil, &Error{Op: "read stream", StreamID: streamID, Err: err}
	}
	s.img.fill(streamID, out, false)
	if opts.Backward {
		reverse(out)
	}
	return out[:pageLen(out)], nil
}

// ReadAll reads a page of the global log in position order: at most
// opts.Limit matching events and MaxPageBytes of their data (see the read
// limits). The page is found in the image's skeleton; the events whose
// payloads are evicted are read from the store with one range read on _id,
// and are not put back into the image (a reader paging through the log would
// flush it).
func (s *Store) ReadAll(ctx context.Context, opts ReadAllOptions) ([]Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	limit, err := limitOf(opts.Limit)
	if err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	out, miss, _ := s.img.logPage(opts.After, opts.filter(), limit, nil)
	if len(miss) == 0 {
		s.stats.hits.Add(1)
		return out[:pageLen(out)], nil
	}
	s.stats.misses.Add(1)
	got, err := s.fetchLog(ctx, miss, MaxPageBytes)
	if err != nil {
		return nil, &Error{Op: "read all", Err: err}
	}
	if len(got) < len(miss) {
		// The fetch stopped at the byte bound: the page ends before the
		// first event it did not read.
		end := miss[len(got)].position
		out = out[:sort.Search(len(out), func(i int) bool { return out[i].Position >= end })]
	}
	page := mergeByPosition(out, got)
	return page[:pageLen(page)], nil
}

// MoreAfter reports whether the log holds an event that opts selects after
// opts.After (its Limit is ignored). It is answered from the image's
// skeleton, without reading any payload: a reader that pages by hasNext
// asks it after every page, and the next event may be evicted.
func (s *Store) MoreAfter(opts ReadAllOptions) bool {
	out, miss, _ := s.img.logPage(opts.After, opts.filter(), 1, nil)
	return len(out)+len(miss) > 0
}

func (o ReadAllOptions) filter() filter {
	f := newFilter(o.Types, o.StreamPrefix, "")
	f.any = o.AnyPrefix
	return f
}

// pageLen is how many of events, in order, one page holds: as many as fit in
// MaxPageBytes of data and metadata, and at least one.
func pageLen(events []Event) int {
	fill := pageFill{max: MaxPageBytes}
	for i := range events {
		if fill.add(&events[i]) && i > 0 {
			return i
		}
	}
	return len(events)
}

// pageFill counts the data and metadata of a page's events against max (0:
// no bound), the measure MaxPageBytes and MaxAppendBytes share.
type pageFill struct{ max, bytes int }

// add counts e and reports whether the page is now over its bound.
func (p *pageFill) add(e *Event) bool {
	p.bytes += len(e.Data) + len(e.Metadata)
	return p.max > 0 && p.bytes > p.max
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
