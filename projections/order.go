package projections

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Order event types. Their data is documented on the payload types below and
// in the package documentation.
const (
	EventOrderCreated     = "OrderCreated"
	EventOrderItemAdded   = "OrderItemAdded"
	EventOrderItemRemoved = "OrderItemRemoved"
	EventOrderPlaced      = "OrderPlaced"
	EventOrderPaid        = "OrderPaid"
	EventOrderShipped     = "OrderShipped"
	EventOrderCancelled   = "OrderCancelled"
)

// OrderStreamPrefix starts the id of every order stream.
const OrderStreamPrefix = "order-"

// OrderCreatedData is the data of OrderCreated:
// {"customerId":"c-1","items":[{"sku":"A","quantity":2,"unitPriceCents":150}]}.
// items is always present, possibly empty.
type OrderCreatedData struct {
	CustomerID string      `json:"customerId"`
	Items      []OrderItem `json:"items"`
}

// OrderItemAddedData is the data of OrderItemAdded:
// {"sku":"A","quantity":2,"unitPriceCents":150}.
type OrderItemAddedData = OrderItem

// OrderItemRemovedData is the data of OrderItemRemoved: {"sku":"A"}.
type OrderItemRemovedData struct {
	SKU string `json:"sku"`
}

// OrderPlacedData is the data of OrderPlaced: {}.
type OrderPlacedData struct{}

// OrderPaidData is the data of OrderPaid: {"amountCents":300}.
type OrderPaidData struct {
	AmountCents int64 `json:"amountCents"`
}

// OrderShippedData is the data of OrderShipped: {"trackingNumber":"1Z999"}.
type OrderShippedData struct {
	TrackingNumber string `json:"trackingNumber"`
}

// OrderCancelledData is the data of OrderCancelled: {"reason":"changed my mind"}.
type OrderCancelledData struct {
	Reason string `json:"reason"`
}

// OrderProjectionName is the name of the order projection.
const OrderProjectionName = "order"

// OrderSchemaVersion is the schema version of OrderProjection. Bump it when
// Apply or Order changes, so that old snapshots are no longer used and the
// read model rebuilds.
const OrderSchemaVersion = 1

// OrderProjection folds an order stream into an Order.
//
// Events are facts: Apply records what they say without checking business
// rules (those are checked by the commands before an event is written).
// Every event, known or not, advances Version, Position and UpdatedAt, so an
// order's version is always its stream's version, which is what an expected
// version refers to. Events before OrderCreated, a second OrderCreated,
// events of unknown types and events whose data does not decode change
// nothing else. An order exists once it has been created (CreatedAt set).
type OrderProjection struct{}

var _ Projection[Order] = OrderProjection{}

func (OrderProjection) Name() string       { return OrderProjectionName }
func (OrderProjection) SchemaVersion() int { return OrderSchemaVersion }
func (OrderProjection) Initial() Order     { return Order{} }

// Apply returns the order after e. It never modifies o: a changed item list
// is a new slice, a set timestamp a new pointer.
func (OrderProjection) Apply(o Order, e eventstore.Event) Order {
	o.Version, o.Position, o.UpdatedAt = e.Version, e.Position, e.RecordedAt
	created := orderExists(o)
	switch e.Type {
	case EventOrderCreated:
		var d OrderCreatedData
		if created || json.Unmarshal(e.Data, &d) != nil {
			return o
		}
		o.ID = strings.TrimPrefix(e.StreamID, OrderStreamPrefix)
		o.Status = StatusDraft
		o.CustomerID = d.CustomerID
		o.Items = nil
		for _, it := range d.Items {
			o.Items = addItem(o.Items, it)
		}
		if o.Items == nil {
			o.Items = []OrderItem{}
		}
		o.TotalCents = totalOf(o.Items)
		o.CreatedAt = e.RecordedAt
	case EventOrderItemAdded:
		var d OrderItemAddedData
		if !created || json.Unmarshal(e.Data, &d) != nil {
			return o
		}
		o.Items = addItem(o.Items, d)
		o.TotalCents = totalOf(o.Items)
	case EventOrderItemRemoved:
		var d OrderItemRemovedData
		if !created || json.Unmarshal(e.Data, &d) != nil {
			return o
		}
		o.Items = removeItem(o.Items, d.SKU)
		o.TotalCents = totalOf(o.Items)
	case EventOrderPlaced:
		if created {
			o.Status, o.PlacedAt = StatusPlaced, timePtr(e)
		}
	case EventOrderPaid:
		if created {
			o.Status, o.PaidAt = StatusPaid, timePtr(e)
		}
	case EventOrderShipped:
		var d OrderShippedData
		if !created || json.Unmarshal(e.Data, &d) != nil {
			return o
		}
		o.Status, o.ShippedAt, o.TrackingNumber = StatusShipped, timePtr(e), &d.TrackingNumber
	case EventOrderCancelled:
		var d OrderCancelledData
		if !created || json.Unmarshal(e.Data, &d) != nil {
			return o
		}
		o.Status, o.CancelledAt, o.CancelReason = StatusCancelled, timePtr(e), &d.Reason
	}
	return o
}

func timePtr(e eventstore.Event) *time.Time {
	t := e.RecordedAt
	return &t
}

// orderExists reports whether the order has been created.
func orderExists(o Order) bool { return !o.CreatedAt.IsZero() }

// addItem returns items with it added: a sku already present adds to its
// quantity and keeps its price. items is not modified.
func addItem(items []OrderItem, it OrderItem) []OrderItem {
	out := make([]OrderItem, len(items), len(items)+1)
	copy(out, items)
	for i := range out {
		if out[i].SKU == it.SKU {
			out[i].Quantity += it.Quantity
			return out
		}
	}
	return append(out, it)
}

// removeItem returns items without sku. items is not modified.
func removeItem(items []OrderItem, sku string) []OrderItem {
	out := make([]OrderItem, 0, len(items))
	for _, it := range items {
		if it.SKU != sku {
			out = append(out, it)
		}
	}
	return out
}

func totalOf(items []OrderItem) int64 {
	var t int64
	for _, it := range items {
		t += it.Quantity * it.UnitPriceCents
	}
	return t
}

// cloneOrder returns o with its own item list, so a caller may modify what
// it gets without touching shared state.
func cloneOrder(o Order) Order {
	if o.Items != nil {
		o.Items = append([]OrderItem{}, o.Items...)
	}
	return o
}
