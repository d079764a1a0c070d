package projections

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TODO(projections helper): replace the bodies below; keep the signatures.

var errTODO = errors.New("not implemented yet")

// Options configure the projections service. The zero value is the default.
type Options struct {
	SnapshotEvery int           // snapshot every K events per stream; 0 = 100
	LagWait       time.Duration // how long at:{position} waits for the read model; 0 = 5s
	CacheSize     int           // LRU of current order states; 0 = 10000
	Logger        *slog.Logger  // nil = slog.Default()
}

// Service holds the projections: the generic merge state engine, the order
// domain (commands, time travel) and the temporal order read model.
type Service struct {
	store *eventstore.Store
	opts  Options
}

// New builds the service on a store. Call Open to start the projector.
func New(store *eventstore.Store, opts Options) *Service { return &Service{store: store, opts: opts} }

// Open starts the read-model projector (it follows the global log from its
// checkpoint) and returns once it is running.
func (s *Service) Open(ctx context.Context) error { return nil }

// Ready reports whether the read model has caught up with the log at least once.
func (s *Service) Ready() bool { return true }

// Lag returns how many positions the read model is behind the store's head.
func (s *Service) Lag() int64 { return 0 }

// Checkpoint returns the read model's checkpoint position.
func (s *Service) Checkpoint() int64 { return 0 }

// Close stops the projector and waits for it.
func (s *Service) Close(ctx context.Context) error { return nil }

// StreamState implements StateEngine.
func (s *Service) StreamState(ctx context.Context, streamID string, at eventstore.At) (json.RawMessage, int64, error) {
	return nil, 0, errTODO
}

// CreateOrder creates an order. With a non-empty orderID the create is
// idempotent: repeating it returns the existing order if it was created with
// the same customer and items.
func (s *Service) CreateOrder(ctx context.Context, orderID, customerID string, items []OrderItem) (Order, error) {
	return Order{}, errTODO
}

// AddOrderItem adds an item; the same sku adds to its quantity.
func (s *Service) AddOrderItem(ctx context.Context, orderID string, item OrderItem, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// RemoveOrderItem removes a sku from a DRAFT order.
func (s *Service) RemoveOrderItem(ctx context.Context, orderID, sku string, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// PlaceOrder moves a DRAFT order with items to PLACED.
func (s *Service) PlaceOrder(ctx context.Context, orderID string, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// PayOrder pays a PLACED order; amountCents must equal totalCents.
func (s *Service) PayOrder(ctx context.Context, orderID string, amountCents int64, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// ShipOrder ships a PAID order.
func (s *Service) ShipOrder(ctx context.Context, orderID, trackingNumber string, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// CancelOrder cancels a DRAFT, PLACED or PAID order.
func (s *Service) CancelOrder(ctx context.Context, orderID, reason string, expectedVersion *int64) (Order, error) {
	return Order{}, errTODO
}

// Order returns the order as it was at the point, or ErrNotFound.
func (s *Service) Order(ctx context.Context, orderID string, at eventstore.At) (Order, error) {
	return Order{}, errTODO
}

// OrderHistory returns the order's revisions recorded within [from, to]
// (nil bounds are open), oldest first. Unknown order: ErrNotFound.
func (s *Service) OrderHistory(ctx context.Context, orderID string, from, to *time.Time) ([]OrderRevision, error) {
	return nil, errTODO
}

// Orders lists orders as they were at a point, from the temporal read model.
func (s *Service) Orders(ctx context.Context, q ListOrders) (OrderPage, error) {
	return OrderPage{}, errTODO
}

// OrderStats aggregates all orders at a point, from the temporal read model.
func (s *Service) OrderStats(ctx context.Context, at eventstore.At) (OrderStats, error) {
	return OrderStats{}, errTODO
}

// OrderStatsSeries returns OrderStats at from, from+step, ... up to to
// (at most 1,000 points, else ErrInvalidInput).
func (s *Service) OrderStatsSeries(ctx context.Context, from, to time.Time, step time.Duration) ([]OrderStats, error) {
	return nil, errTODO
}

// SubscribeOrder delivers the order's revisions after afterVersion (nil =
// live from now), exactly once and in order.
func (s *Service) SubscribeOrder(ctx context.Context, orderID string, afterVersion *int64) (OrderSubscription, error) {
	return nil, errTODO
}
