package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Limits of list queries.
const (
	MaxOrdersPage   = 1000
	MaxSeriesPoints = 1000
	MinSeriesStep   = time.Second
)

// Orders lists orders as they were at a point, from the temporal read model.
// Orders are sorted by the position that created them (then id), which does
// not change as orders change, so cursors stay valid across points in time.
func (s *Service) Orders(ctx context.Context, q ListOrders) (OrderPage, error) {
	if q.First < 1 || q.First > MaxOrdersPage {
		return OrderPage{}, invalidInput("first must be between 1 and %d, got %d", MaxOrdersPage, q.First)
	}
	if q.Status != nil && statusIndex(*q.Status) < 0 {
		return OrderPage{}, invalidInput("unknown order status %q", *q.Status)
	}
	var after *cursorKey
	if q.After != "" {
		k, err := decodeCursor(q.After)
		if err != nil {
			return OrderPage{}, err
		}
		after = &k
	}
	pos, _, err := s.readModelPoint(ctx, q.At)
	if err != nil {
		return OrderPage{}, err
	}
	match := func(o Order) bool {
		return (q.Status == nil || o.Status == *q.Status) && (q.CustomerID == "" || o.CustomerID == q.CustomerID)
	}
	orders, keys, total, hasNext := s.rm.listAt(pos, match, after, q.First)
	page := OrderPage{Orders: orders, Cursors: make([]string, len(keys)), TotalCount: total, HasNext: hasNext}
	if page.Orders == nil {
		page.Orders = []Order{}
	}
	for i, k := range keys {
		page.Cursors[i] = k.encode()
	}
	if n := len(page.Cursors); n > 0 {
		page.EndCursor = page.Cursors[n-1]
	}
	return page, nil
}

// OrderStats aggregates all orders at a point, from the temporal read model.
// At is the time asked for with AtTime, the recordedAt of the position with
// AtPosition (the Unix epoch for position 0), and the current time for Now.
func (s *Service) OrderStats(ctx context.Context, at eventstore.At) (OrderStats, error) {
	pos, when, err := s.readModelPoint(ctx, at)
	if err != nil {
		return OrderStats{}, err
	}
	return statsOf(s.rm.statsAt(pos), pos, when), nil
}

func statsOf(p statsPoint, pos int64, when time.Time) OrderStats {
	st := OrderStats{At: when, Position: pos, RevenueCents: p.revenue, CountByStatus: make([]StatusCount, len(AllStatuses))}
	for i, status := range AllStatuses {
		st.CountByStatus[i] = StatusCount{Status: status, Count: int(p.counts[i])}
	}
	return st
}

// OrderStatsSeries returns OrderStats at from, from+step, ... up to to
// (at most 1,000 points, else ErrInvalidInput).
func (s *Service) OrderStatsSeries(ctx context.Context, from, to time.Time, step time.Duration) ([]OrderStats, error) {
	switch {
	case step < MinSeriesStep:
		return nil, invalidInput("the step must be at least %v, got %v", MinSeriesStep, step)
	case to.Before(from):
		return nil, invalidInput("from (%s) is after to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	n := int64(to.Sub(from)/step) + 1
	if n > MaxSeriesPoints {
		return nil, invalidInput("the series would have %d points; at most %d are allowed", n, MaxSeriesPoints)
	}
	if _, _, err := s.readModelPoint(ctx, eventstore.AtTime(to)); err != nil {
		return nil, err
	}
	out := make([]OrderStats, 0, n)
	for t := from; !t.After(to); t = t.Add(step) {
		pos := s.store.PositionAt(t)
		out = append(out, statsOf(s.rm.statsAt(pos), pos, t))
	}
	return out, nil
}

// readModelPoint turns a point into a global position and its time, and
// waits, up to LagWait, until the read model has reached that position.
//
// Now is the store's head when the query arrives. Because an append returns
// only once it is in this instance's memory image, the head includes every
// write this instance acknowledged, and waiting for the read model to reach
// it is what makes a plain query reflect them (read your writes). A position
// this instance has not seen yet is first waited for in the store, which
// reads the log at once (writes taken by other instances).
func (s *Service) readModelPoint(ctx context.Context, at eventstore.At) (int64, time.Time, error) {
	return s.pointOn(ctx, at, &s.rm.watermark, "the order read model")
}

// waitable is a temporal read model that readers wait on: a *watermark, or
// a declarative projection's runner (which also stops waiting on a fault).
type waitable interface {
	waitFor(ctx context.Context, p int64) error
	position() int64
}

// pointOn is readModelPoint for any temporal read model: it resolves the
// point and waits, up to LagWait, until the model reaches it. model names
// the read model in the lagging error.
func (s *Service) pointOn(ctx context.Context, at eventstore.At, mark waitable, model string) (int64, time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, s.opts.LagWait)
	defer cancel()
	var pos int64
	var when time.Time
	if _, ok := at.Version(); ok {
		return 0, time.Time{}, invalidInput("a version is a point of one stream; use a time or a position for lists and statistics")
	}
	if t, ok := at.Time(); ok {
		pos, when = s.store.PositionAt(t), t
	} else if p, ok := at.Position(); ok {
		if p < 0 {
			return 0, time.Time{}, invalidInput("position must not be negative, got %d", p)
		}
		if err := s.waitStore(ctx, wctx, p); err != nil {
			return 0, time.Time{}, err
		}
		pos = p
		t, err := s.recordedAt(ctx, p)
		if err != nil {
			return 0, time.Time{}, err
		}
		when = t
	} else {
		pos, when = s.store.HeadPosition(), time.Now().UTC()
	}
	if err := mark.waitFor(wctx, pos); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return 0, time.Time{}, fmt.Errorf("%w: %s is at position %d; position %d was asked for and not reached within %v",
				ErrProjectionLagging, model, mark.position(), pos, s.opts.LagWait)
		}
		return 0, time.Time{}, err
	}
	return pos, when, nil
}

// recordedAt returns when position p was recorded (the Unix epoch for 0).
func (s *Service) recordedAt(ctx context.Context, p int64) (time.Time, error) {
	if p == 0 {
		return time.Unix(0, 0).UTC(), nil
	}
	// From the store's skeleton: never a store read, even when the event's
	// payload is evicted.
	t, ok := s.store.RecordedAt(p)
	if !ok {
		return time.Time{}, fmt.Errorf("projections: position %d is missing from the log", p)
	}
	return t, nil
}
