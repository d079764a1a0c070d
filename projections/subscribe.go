package projections

import (
	"context"
	"errors"
	"sync"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// SubscribeOrder delivers the order's revisions after afterVersion (nil =
// live from now), exactly once and in order.
//
// It wraps a store subscription to the order's stream, so it has the same
// guarantees (gap-free, exactly once, a slow reader only lags its own
// cursor), and folds each event onto the state before it, starting from the
// state at the subscription's start computed by the engine. Events that do
// not belong to a created order (before OrderCreated) are skipped. An order
// that does not exist yet can be subscribed to; its revisions start with its
// creation.
func (s *Service) SubscribeOrder(ctx context.Context, orderID string, afterVersion *int64) (OrderSubscription, error) {
	if err := validateOrderID(orderID); err != nil {
		return nil, err
	}
	if afterVersion != nil && *afterVersion < 0 {
		return nil, invalidInput("afterVersion must not be negative, got %d", *afterVersion)
	}
	stream := OrderStreamID(orderID)
	var head int64
	switch h, err := s.store.Head(ctx, stream); {
	case err == nil:
		head = h.Version
	case !errors.Is(err, eventstore.ErrStreamNotFound):
		return nil, err
	}
	// Start from a version the image holds, so the engine can compute the
	// state there; events up to afterVersion are folded but not delivered.
	start, skip := head, head
	if afterVersion != nil {
		start, skip = min(*afterVersion, head), *afterVersion
	}
	sub, err := s.store.Subscribe(ctx, eventstore.SubscribeOptions{StreamID: stream, AfterVersion: &start})
	if err != nil {
		return nil, err
	}
	f, err := s.orders.at(ctx, stream, start, nil)
	if err != nil {
		sub.Close()
		return nil, err
	}
	return &orderSubscription{sub: sub, proj: s.orders.proj, state: f, skip: skip}, nil
}

type orderSubscription struct {
	sub  *eventstore.Subscription
	proj Projection[Order]

	mu    sync.Mutex
	state folded[Order]
	skip  int64 // events up to this version are folded, not delivered
}

var _ OrderSubscription = (*orderSubscription)(nil)

// Recv returns the next revision, waiting as long as ctx allows. After Close
// it returns an error wrapping eventstore.ErrClosed.
func (o *orderSubscription) Recv(ctx context.Context) (OrderRevision, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		ev, err := o.sub.Recv(ctx)
		if err != nil {
			return OrderRevision{}, err
		}
		o.state = folded[Order]{state: o.proj.Apply(o.state.state, ev), version: ev.Version}
		if ev.Version <= o.skip || !orderExists(o.state.state) {
			continue
		}
		return OrderRevision{Version: ev.Version, Position: ev.Position, RecordedAt: ev.RecordedAt,
			Event: ev, Order: cloneOrder(o.state.state)}, nil
	}
}

// Lag returns how many positions the subscription is behind the store's head.
func (o *orderSubscription) Lag() int64 { return o.sub.Lag() }

// Close ends the subscription; it is safe to call more than once.
func (o *orderSubscription) Close() { o.sub.Close() }
