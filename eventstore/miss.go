package eventstore

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The miss path: reads of events whose payloads were evicted. Each is one
// indexed range read, located exactly by the skeleton, and none runs while
// the image lock is held:
//
//   - a stream page reads the commits {stream, version in [from, hi]} sorted
//     by version (index stream_version), from being the first version of the
//     commit that holds the page's first event;
//   - a page of the global log reads {_id in [from, last]} sorted by _id (the
//     first position), from being the first position of the commit that holds
//     the page's first missing event and last the position of its last one;
//   - a subscription catching up over evicted positions streams one such
//     range with one cursor, up to the head it saw when it opened it.

// fetchStream reads versions lo..hi of a stream from the store. from is the
// version at which the commit holding lo starts. With maxBytes > 0 it stops
// after the event that takes the data read past maxBytes (a page's bound),
// and returns versions lo..k.
func (s *Store) fetchStream(ctx context.Context, id string, from, lo, hi int64, maxBytes int) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	cur, err := s.findCommits(ctx,
		bson.D{{Key: "stream", Value: id}, {Key: "version", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: hi}}}},
		id, from-1, hi)
	if err != nil {
		return nil, err
	}
	defer cur.close(ctx)
	out := make([]Event, 0, min(hi-lo+1, MaxReadLimit))
	fill, full := pageFill{max: maxBytes}, false
	for !full {
		d, err := cur.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		for _, e := range d.events() {
			if e.Version >= lo && e.Version <= hi && !full {
				out = append(out, e)
				full = fill.add(&e)
			}
		}
	}
	for i := range out {
		if out[i].Version != lo+int64(i) {
			return nil, incomplete(fmt.Sprintf("versions %d to %d of stream %s", lo, hi, id))
		}
	}
	if !full && int64(len(out)) != hi-lo+1 {
		return nil, incomplete(fmt.Sprintf("versions %d to %d of stream %s", lo, hi, id))
	}
	return out, nil
}

// fetchLog reads the events at the positions of want (in position order)
// from the store, with one range read. It stops after the event that takes
// the data read past maxBytes (a page's bound), and then returns the events
// of a prefix of want.
func (s *Store) fetchLog(ctx context.Context, want []slot, maxBytes int) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	from, last := want[0].position-int64(want[0].off), want[len(want)-1].position
	cur, err := s.findCommits(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: last}}}},
		"", from-1, last)
	if err != nil {
		return nil, err
	}
	defer cur.close(ctx)
	out := make([]Event, 0, len(want))
	fill, full := pageFill{max: maxBytes}, false
	for len(out) < len(want) && !full {
		d, err := cur.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if d.LastPosition < want[len(out)].position {
			continue
		}
		for _, e := range d.events() {
			if len(out) < len(want) && e.Position == want[len(out)].position && !full {
				out = append(out, e)
				full = fill.add(&e)
			}
		}
	}
	if !full && len(out) != len(want) {
		return nil, incomplete(fmt.Sprintf("positions %d to %d", want[0].position, last))
	}
	return out, nil
}

// incomplete is the error for a store that does not hold what the image
// says it holds: it was changed behind our back, or a read was cut short.
func incomplete(what string) error {
	return fmt.Errorf("%w: the store did not return all of %s; retry", ErrStoreUnavailable, what)
}

// mergeByPosition merges two event lists sorted by position.
func mergeByPosition(a, b []Event) []Event {
	out := make([]Event, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Position < b[0].Position {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// catchUp is a subscription's cursor over the store, open while it reads
// positions whose payloads are evicted. It is one range read over a window
// of commits up to bound (openWindow in subscribe.go says why windows).
// What it reads is not put back into the image: a subscriber passing over
// the whole log would flush everything else.
type catchUp struct {
	cur   *commitCursor
	bound int64 // last position it delivers
}

// fromStore reads the catch-up cursor until it has matching events or ends.
// It advances the cursor over every position it examines.
func (sub *Subscription) fromStore(ctx context.Context) error {
	c := sub.cat
	for len(sub.pending) == 0 {
		d, err := c.cur.next(ctx)
		if err == io.EOF {
			sub.dropCatchUp()
			// Every commit up to bound has been read (bound is a commit
			// boundary: it was the head).
			sub.cursor = max(sub.cursor, c.bound)
			return nil
		}
		if err != nil {
			sub.dropCatchUp()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if d.ID > c.bound {
			sub.dropCatchUp()
			sub.cursor = max(sub.cursor, c.bound)
			return nil
		}
		if d.LastPosition <= sub.cursor || !sub.s.img.has(d.ID) {
			// Already delivered, or a commit the image skipped after it
			// waited for it too long (guarantee 5): memory and store
			// readers must deliver the same log.
			continue
		}
		for _, e := range d.events() {
			if e.Position <= sub.cursor {
				continue
			}
			sub.cursor = e.Position
			if sub.f.match(&e) {
				sub.pending = append(sub.pending, e)
			}
		}
	}
	return nil
}

// dropCatchUp closes the catch-up cursor. Callers hold sub.mu.
func (sub *Subscription) dropCatchUp() {
	if sub.cat == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sub.cat.cur.close(ctx)
	sub.cat = nil
	sub.hasCat.Store(false)
}
