package graph

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/model"
	"github.com/hindsight-dev/hindsight/projections"
)

// Argument rules shared by several fields. Each returns a *inputError
// (BAD_USER_INPUT) for anything a client got wrong.

// pageSize checks first: 1 to MaxPageSize; nil means the schema default.
func pageSize(first *int, def int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 1 || *first > MaxPageSize {
		return 0, badInputf("first must be between 1 and %d, got %d", MaxPageSize, *first)
	}
	return *first, nil
}

// Cursors are opaque to clients: base64url of a kind letter and a number. The
// kind keeps a cursor of one connection from being used on another.
const (
	cursorPosition = 'p' // global log: the event's position
	cursorVersion  = 'v' // one stream: the event's version
)

func encodeCursor(kind byte, n int64) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendInt([]byte{kind}, n, 10))
}

func decodeCursor(kind byte, s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) < 2 || len(b) > 21 || b[0] != kind {
		return 0, badInputf("after: %q is not a cursor of this connection", truncate(s, 64))
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || n < 0 {
		return 0, badInputf("after: %q is not a cursor of this connection", truncate(s, 64))
	}
	return n, nil
}

// startAfter returns where a page starts: the cursor when given (it takes
// precedence, so a client can keep its other arguments when paging), else
// the exclusive starting point, else 0.
func startAfter(kind byte, after *string, from *int64) (int64, error) {
	if after != nil {
		return decodeCursor(kind, *after)
	}
	if from != nil {
		if *from < 0 {
			return 0, badInputf("the starting point must not be negative, got %d", *from)
		}
		return *from, nil
	}
	return 0, nil
}

// pointInTime converts a PointInTime. At most one field may be set; version
// only where the query reads a single stream.
func pointInTime(p *model.PointInTime, singleStream bool) (eventstore.At, error) {
	if p == nil {
		return eventstore.Now(), nil
	}
	n := 0
	for _, set := range []bool{p.Time != nil, p.Version != nil, p.Position != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return eventstore.At{}, badInputf("at: give at most one of time, version and position")
	case p.Time != nil:
		return eventstore.AtTime(*p.Time), nil
	case p.Position != nil:
		return eventstore.AtPosition(*p.Position), nil
	case p.Version != nil:
		if !singleStream {
			return eventstore.At{}, badInputf("at: version applies to single-stream queries only; use time or position")
		}
		if *p.Version < 0 {
			return eventstore.At{}, badInputf("at: version must not be negative, got %d", *p.Version)
		}
		return eventstore.AtVersion(int64(*p.Version)), nil
	}
	return eventstore.Now(), nil
}

// toExpectedState converts appendToStream's expectedVersion/expectedState.
// Neither means ANY.
func toExpectedState(version *int, state *model.StreamState) (eventstore.ExpectedState, error) {
	switch {
	case version != nil && state != nil:
		return nil, badInputf("give at most one of expectedVersion and expectedState")
	case version != nil:
		if *version < 0 {
			return nil, badInputf("expectedVersion must not be negative, got %d", *version)
		}
		return eventstore.Exact(*version), nil
	case state == nil:
		return eventstore.Any{}, nil
	}
	switch *state {
	case model.StreamStateNoStream:
		return eventstore.NoStream{}, nil
	case model.StreamStateStreamExists:
		return eventstore.StreamExists{}, nil
	}
	return eventstore.Any{}, nil
}

// optionalVersion converts an optional expected version of a domain command.
func optionalVersion(v *int) (*int64, error) {
	if v == nil {
		return nil, nil
	}
	if *v < 0 {
		return nil, badInputf("expectedVersion must not be negative, got %d", *v)
	}
	n := int64(*v)
	return &n, nil
}

// optionalAfterVersion converts a subscription's exclusive afterVersion.
func optionalAfterVersion(v *int) (*int64, error) {
	if v == nil {
		return nil, nil
	}
	if *v < 0 {
		return nil, badInputf("afterVersion must not be negative, got %d", *v)
	}
	n := int64(*v)
	return &n, nil
}

// eventConnection maps a page of events. cursor gives each event's cursor.
func eventConnection(events []eventstore.Event, hasNext bool, cursor func(*eventstore.Event) string) *model.EventConnection {
	c := &model.EventConnection{Edges: make([]model.EventEdge, len(events)), PageInfo: &model.PageInfo{HasNextPage: hasNext}}
	for i := range events {
		c.Edges[i] = model.EventEdge{Cursor: cursor(&events[i]), Node: &events[i]}
	}
	if len(events) > 0 {
		end := c.Edges[len(events)-1].Cursor
		c.PageInfo.EndCursor = &end
	}
	return c
}

func positionCursor(e *eventstore.Event) string { return encodeCursor(cursorPosition, e.Position) }
func versionCursor(e *eventstore.Event) string  { return encodeCursor(cursorVersion, e.Version) }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// orderResult maps a domain command's or query's order.
func orderResult(o projections.Order, err error) (*projections.Order, error) {
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// orderConnection maps a page of orders; the cursors come from projections.
func orderConnection(p projections.OrderPage) *model.OrderConnection {
	c := &model.OrderConnection{
		Edges:      make([]model.OrderEdge, len(p.Orders)),
		PageInfo:   &model.PageInfo{HasNextPage: p.HasNext},
		TotalCount: p.TotalCount,
	}
	for i := range p.Orders {
		cursor := ""
		if i < len(p.Cursors) {
			cursor = p.Cursors[i]
		}
		c.Edges[i] = model.OrderEdge{Cursor: cursor, Node: &p.Orders[i]}
	}
	if p.EndCursor != "" {
		end := p.EndCursor
		c.PageInfo.EndCursor = &end
	}
	return c
}

// orderCommand is the scaffolding every command on an existing order
// shares: the caller must be allowed the order's stream, the optional
// expected version is checked and converted, and the order comes back as a
// pointer. run makes the one call on projections.
func orderCommand(ctx context.Context, orderID string, expectedVersion *int, run func(ev *int64) (projections.Order, error)) (*projections.Order, error) {
	if err := allowOrder(ctx, orderID); err != nil {
		return nil, err
	}
	ev, err := optionalVersion(expectedVersion)
	if err != nil {
		return nil, err
	}
	return orderResult(run(ev))
}
