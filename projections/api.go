package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Sentinel errors of this package. Errors returned wrap them; use errors.Is.
var (
	// ErrNotFound: the order (or stream) does not exist at that point.
	ErrNotFound = errors.New("not found")
	// ErrInvalidState: a business rule forbids the command in the current
	// state. The wrapping *RuleError's message is meant for people.
	ErrInvalidState = errors.New("invalid state")
	// ErrInvalidInput: malformed command input (bad sku, quantity, id...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrProjectionLagging: the read model did not reach the requested
	// position within the wait (5 s by default).
	ErrProjectionLagging = errors.New("projection lagging")
	// ErrStateTooLarge: a stream's merged state is over
	// MaxStreamStateBytes as JSON at the point asked for or before it. The
	// error is a *StateTooLargeError.
	ErrStateTooLarge = errors.New("state too large")
)

// StateTooLargeError refuses a stream's merged state (Stream.state) at and
// after the version at which it passed MaxStreamStateBytes as JSON: no
// snapshot can hold such a state, so each of those reads would fold the
// stream from before it. The stream's events can still be read.
// Is(ErrStateTooLarge) holds.
type StateTooLargeError struct {
	StreamID string
	Version  int64 // the first version at which the state is over the limit
	Bytes    int   // the state's size as JSON at that version
	Limit    int   // MaxStreamStateBytes
	// Values is the JSON values the state holds there when they, not its
	// bytes, are over the limit (MaxStreamStateValues); else 0.
	Values int
}

func (e *StateTooLargeError) Error() string {
	if e.Values > 0 {
		return fmt.Sprintf("projections: the state of stream %q holds %d JSON values at version %d, over the limit of %d; "+
			"its state is not served at or after that version: read the stream's events instead", e.StreamID, e.Values, e.Version, MaxStreamStateValues)
	}
	return fmt.Sprintf("projections: the state of stream %q is %d bytes as JSON at version %d, over the limit of %d bytes; "+
		"its state is not served at or after that version: read the stream's events instead", e.StreamID, e.Bytes, e.Version, e.Limit)
}

func (e *StateTooLargeError) Is(target error) bool { return target == ErrStateTooLarge }

// RuleError is a violated business rule; Is(ErrInvalidState) holds.
type RuleError struct{ Msg string }

func (e *RuleError) Error() string        { return e.Msg }
func (e *RuleError) Is(target error) bool { return target == ErrInvalidState }

// OrderStatus is an order's lifecycle state.
type OrderStatus string

const (
	StatusDraft     OrderStatus = "DRAFT"
	StatusPlaced    OrderStatus = "PLACED"
	StatusPaid      OrderStatus = "PAID"
	StatusShipped   OrderStatus = "SHIPPED"
	StatusCancelled OrderStatus = "CANCELLED"
)

// AllStatuses lists the statuses in lifecycle order.
var AllStatuses = []OrderStatus{StatusDraft, StatusPlaced, StatusPaid, StatusShipped, StatusCancelled}

// OrderItem is one line of an order.
type OrderItem struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unitPriceCents"`
}

// Order is the state of an order at some version.
type Order struct {
	ID             string      `json:"id"`
	Version        int64       `json:"version"`
	Position       int64       `json:"position"`
	Status         OrderStatus `json:"status"`
	CustomerID     string      `json:"customerId"`
	Items          []OrderItem `json:"items"`
	TotalCents     int64       `json:"totalCents"`
	CreatedAt      time.Time   `json:"createdAt"`
	UpdatedAt      time.Time   `json:"updatedAt"`
	PlacedAt       *time.Time  `json:"placedAt,omitempty"`
	PaidAt         *time.Time  `json:"paidAt,omitempty"`
	ShippedAt      *time.Time  `json:"shippedAt,omitempty"`
	CancelledAt    *time.Time  `json:"cancelledAt,omitempty"`
	CancelReason   *string     `json:"cancelReason,omitempty"`
	TrackingNumber *string     `json:"trackingNumber,omitempty"`
}

// OrderRevision is an order right after one of its events.
type OrderRevision struct {
	Version    int64
	Position   int64
	RecordedAt time.Time
	Event      eventstore.Event
	Order      Order
}

// ListOrders selects a page of orders as they were at a point.
type ListOrders struct {
	Status     *OrderStatus
	CustomerID string // empty = any
	At         eventstore.At
	First      int    // 1..1000
	After      string // opaque cursor from a previous page
}

// OrderPage is one page of orders.
type OrderPage struct {
	Orders     []Order
	Cursors    []string // one per order
	TotalCount int      // all matching orders, not only this page
	HasNext    bool
	EndCursor  string
}

// StatusCount is the number of orders in one status.
type StatusCount struct {
	Status OrderStatus
	Count  int
}

// OrderStats are aggregates over all orders at a point.
type OrderStats struct {
	At            time.Time
	Position      int64
	CountByStatus []StatusCount // every status, in AllStatuses order
	RevenueCents  int64         // sum of totalCents over PAID and SHIPPED orders
}

// OrderStreamID returns the stream of an order: "order-<id>".
func OrderStreamID(orderID string) string { return "order-" + orderID }

// StateEngine answers the generic JSON-merge state of any stream at any point.
type StateEngine interface {
	// StreamState folds the stream's events' data as RFC 7386 merge patches
	// up to the point. It returns nil state and version 0 when the stream had
	// no events then.
	StreamState(ctx context.Context, streamID string, at eventstore.At) (state json.RawMessage, version int64, err error)
}

// OrderSubscription delivers an order's revisions after a version.
type OrderSubscription interface {
	Recv(ctx context.Context) (OrderRevision, error)
	Lag() int64
	Close()
}
