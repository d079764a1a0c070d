package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// orderIDNamespace makes the event id of an idempotent create: a UUIDv5 of
// the order id, so a repeated create carries the same event id and the store
// recognizes it (guarantee 3).
var orderIDNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://hindsight.dev/ns/order-created"))

// CreateOrder creates an order. With a non-empty orderID the create is
// idempotent: repeating it returns the existing order if it was created with
// the same customer and items. Without one, the order gets a UUIDv7 id.
func (s *Service) CreateOrder(ctx context.Context, orderID, customerID string, items []OrderItem) (Order, error) {
	data, err := newOrderCreated(customerID, items)
	if err != nil {
		return Order{}, err
	}
	idempotent := orderID != ""
	if idempotent {
		if err := validateOrderID(orderID); err != nil {
			return Order{}, err
		}
	} else {
		u, err := uuid.NewV7()
		if err != nil {
			return Order{}, err
		}
		orderID = u.String()
	}
	ev, err := newEvent(EventOrderCreated, data)
	if err != nil {
		return Order{}, err
	}
	if idempotent {
		ev.ID = uuid.NewSHA1(orderIDNamespace, []byte(orderID)).String()
	}
	stream := OrderStreamID(orderID)
	// NoStream makes creates of the same id race safely: one wins, and a
	// repeat with the same event id and data is answered by the store with
	// the original result (it checks ids before the expected state).
	_, err = s.store.Append(ctx, stream, eventstore.NoStream{}, ev)
	switch {
	case errors.Is(err, eventstore.ErrDuplicateEventID), errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return Order{}, ruleError("order %s already exists with a different customer or items", orderID)
	case err != nil:
		return Order{}, err
	}
	// The current state, not the created one: a repeated create returns the
	// order as it is now, which may have moved on since it was created.
	f, err := current(ctx, s, s.orders, s.orderCache, stream)
	if err != nil {
		return Order{}, err
	}
	return cloneOrder(f.state), nil
}

// AddOrderItem adds an item; the same sku adds to its quantity.
func (s *Service) AddOrderItem(ctx context.Context, orderID string, item OrderItem, expectedVersion *int64) (Order, error) {
	if err := validateItem(item); err != nil {
		return Order{}, err
	}
	return s.execute(ctx, orderID, expectedVersion, decideAddItem(item))
}

// RemoveOrderItem removes a sku from a DRAFT order.
func (s *Service) RemoveOrderItem(ctx context.Context, orderID, sku string, expectedVersion *int64) (Order, error) {
	if err := validateText("sku", sku, MaxSKULength); err != nil {
		return Order{}, err
	}
	return s.execute(ctx, orderID, expectedVersion, decideRemoveItem(sku))
}

// PlaceOrder moves a DRAFT order with items to PLACED.
func (s *Service) PlaceOrder(ctx context.Context, orderID string, expectedVersion *int64) (Order, error) {
	return s.execute(ctx, orderID, expectedVersion, decidePlace())
}

// PayOrder pays a PLACED order; amountCents must equal totalCents.
func (s *Service) PayOrder(ctx context.Context, orderID string, amountCents int64, expectedVersion *int64) (Order, error) {
	if amountCents < 0 {
		return Order{}, invalidInput("amountCents must not be negative, got %d", amountCents)
	}
	return s.execute(ctx, orderID, expectedVersion, decidePay(amountCents))
}

// ShipOrder ships a PAID order.
func (s *Service) ShipOrder(ctx context.Context, orderID, trackingNumber string, expectedVersion *int64) (Order, error) {
	if err := validateText("trackingNumber", trackingNumber, MaxTrackingNumberLength); err != nil {
		return Order{}, err
	}
	return s.execute(ctx, orderID, expectedVersion, decideShip(trackingNumber))
}

// CancelOrder cancels a DRAFT, PLACED or PAID order.
func (s *Service) CancelOrder(ctx context.Context, orderID, reason string, expectedVersion *int64) (Order, error) {
	if err := validateText("reason", reason, MaxCancelReasonLength); err != nil {
		return Order{}, err
	}
	return s.execute(ctx, orderID, expectedVersion, decideCancel(reason))
}

// execute runs a command on an existing order: load the current state,
// decide, and append with the version the decision was made on, so the
// event is written only if nothing happened to the order in between
// (guarantee 2).
//
// With an expected version from the caller, that version is used and a
// mismatch is returned as the store's *eventstore.WrongExpectedVersionError.
// Without one, a conflict means another writer got in first; the command is
// decided again on fresh state, up to MaxCommandAttempts times, with a short
// jittered backoff so that contenders spread out.
func (s *Service) execute(ctx context.Context, orderID string, expected *int64, decide decision) (Order, error) {
	if err := validateOrderID(orderID); err != nil {
		return Order{}, err
	}
	stream := OrderStreamID(orderID)
	if expected != nil {
		return s.executeExpected(ctx, orderID, stream, *expected, decide)
	}
	caughtUp := false
	for attempt := 1; ; attempt++ {
		cur, err := current(ctx, s, s.orders, s.orderCache, stream)
		if err != nil {
			return Order{}, err
		}
		o, err := s.decideAndAppend(ctx, orderID, stream, cur, decide)
		if !caughtUp && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidState)) {
			// A rejection is decided on this instance's image, which may
			// miss a write just taken by another instance. Before
			// confirming it, let the image catch up once.
			caughtUp = true
			if s.syncWithLog(ctx) {
				continue
			}
		}
		if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return o, err
		}
		if attempt >= s.opts.MaxCommandAttempts {
			return Order{}, fmt.Errorf("order %s: gave up after %d conflicting attempts: %w", orderID, attempt, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return Order{}, err
		}
	}
}

func (s *Service) executeExpected(ctx context.Context, orderID, stream string, expected int64, decide decision) (Order, error) {
	if expected < 0 {
		return Order{}, invalidInput("expectedVersion must not be negative, got %d", expected)
	}
	cur, err := current(ctx, s, s.orders, s.orderCache, stream)
	if err != nil {
		return Order{}, err
	}
	if cur.version < expected {
		// The caller may have seen a write that another instance took and
		// that has not reached this one: wait for it briefly (guarantee 8)
		// rather than report a conflict against stale state.
		s.waitStreamVersion(ctx, stream, expected)
		if cur, err = current(ctx, s, s.orders, s.orderCache, stream); err != nil {
			return Order{}, err
		}
	}
	if !orderExists(cur.state) {
		return Order{}, fmt.Errorf("%w: order %q does not exist", ErrNotFound, orderID)
	}
	if cur.version != expected {
		// Shaped exactly like the store's own conflict error.
		return Order{}, &eventstore.Error{Op: "append", StreamID: stream, Err: &eventstore.WrongExpectedVersionError{
			StreamID: stream, Expected: eventstore.Exact(expected), Actual: cur.version}}
	}
	return s.decideAndAppend(ctx, orderID, stream, cur, decide)
}

// decideAndAppend decides on cur and appends at exactly cur's version.
func (s *Service) decideAndAppend(ctx context.Context, orderID, stream string, cur folded[Order], decide decision) (Order, error) {
	if !orderExists(cur.state) {
		return Order{}, fmt.Errorf("%w: order %q does not exist", ErrNotFound, orderID)
	}
	ev, err := decide(cur.state)
	if err != nil {
		return Order{}, err
	}
	res, err := s.store.Append(ctx, stream, eventstore.Exact(cur.version), ev)
	if err != nil {
		return Order{}, err
	}
	// The append succeeded at exactly cur's version, so applying its events
	// to cur gives the state at the new version.
	f := cur
	for _, e := range res.Events {
		f = folded[Order]{state: s.orders.proj.Apply(f.state, e), version: e.Version}
		if e.Version%s.orders.every == 0 {
			s.orders.offerSnapshot(ctx, e, f.state)
		}
	}
	s.orderCache.put(stream, f)
	return cloneOrder(f.state), nil
}

// syncWithLog brings the memory image up to date with the log and reports
// whether it moved, so that a command rejected on a stale image (another
// instance just wrote the order) is tried again on fresh state. Sync learns
// other instances' commits from their beacons and reads the log only when
// those cannot account for everything.
func (s *Service) syncWithLog(ctx context.Context) bool {
	head := s.store.HeadPosition()
	return s.store.Sync(ctx) == nil && s.store.HeadPosition() > head
}

// waitStreamVersion waits up to LagWait for the stream to reach version v in
// this instance's memory image, asking the store to read the log.
func (s *Service) waitStreamVersion(ctx context.Context, stream string, v int64) {
	wctx, cancel := context.WithTimeout(ctx, s.opts.LagWait)
	defer cancel()
	for {
		if h, err := s.store.Head(wctx, stream); err == nil && h.Version >= v {
			return
		}
		if s.store.WaitForPosition(wctx, s.store.HeadPosition()+1) != nil {
			return
		}
	}
}

// backoff sleeps a random time that grows with the attempt: up to 1 ms after
// the first conflict, doubling to at most 32 ms.
func backoff(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt-1, 5)
	t := time.NewTimer(rand.N(ceiling) + 100*time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
