package projections

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Limits of the order domain. Input outside them is ErrInvalidInput; a
// command that would take an order outside them is a *RuleError.
const (
	MaxItemQuantity         = 10_000        // per sku, also after adding to an existing line
	MaxUnitPriceCents       = 1_000_000_000 // per unit
	MaxSKULength            = 64            // characters
	MaxCustomerIDLength     = 256           // characters
	MaxTrackingNumberLength = 256           // characters
	MaxCancelReasonLength   = 1024          // characters
	MaxOrderItems           = 1000          // different skus in one order
)

func invalidInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
}

func ruleError(format string, args ...any) error {
	return &RuleError{Msg: fmt.Sprintf(format, args...)}
}

// validateOrderID checks that the id makes a valid stream id.
func validateOrderID(id string) error {
	if id == "" {
		return invalidInput("the order id must not be empty")
	}
	if err := eventstore.ValidateStreamID(OrderStreamID(id)); err != nil {
		return invalidInput("order id %q cannot name a stream: %s", id, trimSentinel(err))
	}
	return nil
}

// trimSentinel drops eventstore's "invalid argument: " prefix from a message.
func trimSentinel(err error) string {
	msg, prefix := err.Error(), eventstore.ErrInvalidArgument.Error()+": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}

// validateText checks a required text field of 1 to max characters.
func validateText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalidInput("%s is not valid UTF-8", field)
	}
	n := utf8.RuneCountInString(s)
	if n == 0 || n > max {
		return invalidInput("%s must be 1 to %d characters long, got %d", field, max, n)
	}
	return nil
}

func validateItem(it OrderItem) error {
	if err := validateText("sku", it.SKU, MaxSKULength); err != nil {
		return err
	}
	if it.Quantity < 1 || it.Quantity > MaxItemQuantity {
		return invalidInput("quantity of sku %q must be between 1 and %d, got %d", it.SKU, MaxItemQuantity, it.Quantity)
	}
	if it.UnitPriceCents < 0 || it.UnitPriceCents > MaxUnitPriceCents {
		return invalidInput("unitPriceCents of sku %q must be between 0 and %d, got %d", it.SKU, MaxUnitPriceCents, it.UnitPriceCents)
	}
	return nil
}

// newOrderCreated validates a create's input and returns its event data.
// Items repeating a sku are merged into one line, as addOrderItem would.
func newOrderCreated(customerID string, items []OrderItem) (OrderCreatedData, error) {
	if err := validateText("customerId", customerID, MaxCustomerIDLength); err != nil {
		return OrderCreatedData{}, err
	}
	d := OrderCreatedData{CustomerID: customerID, Items: []OrderItem{}}
	for _, it := range items {
		if err := validateItem(it); err != nil {
			return OrderCreatedData{}, err
		}
		i := indexOfSKU(d.Items, it.SKU)
		if i < 0 {
			d.Items = append(d.Items, it)
			continue
		}
		line := &d.Items[i]
		if line.UnitPriceCents != it.UnitPriceCents {
			return OrderCreatedData{}, invalidInput("sku %q is listed twice with different prices", it.SKU)
		}
		if line.Quantity+it.Quantity > MaxItemQuantity {
			return OrderCreatedData{}, invalidInput("sku %q is listed with a total quantity above %d", it.SKU, MaxItemQuantity)
		}
		line.Quantity += it.Quantity
	}
	if len(d.Items) > MaxOrderItems {
		return OrderCreatedData{}, invalidInput("an order holds at most %d different skus, got %d", MaxOrderItems, len(d.Items))
	}
	return d, nil
}

func indexOfSKU(items []OrderItem, sku string) int {
	for i, it := range items {
		if it.SKU == sku {
			return i
		}
	}
	return -1
}

// A decision checks a command against the order as it is and returns the
// event to append, a *RuleError, or an ErrInvalidInput error. Decisions are
// pure: they are tested without a store, and a command re-runs its decision
// on fresh state after a conflict.
type decision func(o Order) (eventstore.NewEvent, error)

func newEvent(typ string, data any) (eventstore.NewEvent, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return eventstore.NewEvent{}, err
	}
	return eventstore.NewEvent{Type: typ, Data: b}, nil
}

func requireDraftForItems(o Order) error {
	if o.Status != StatusDraft {
		return ruleError("order %s is %s; its items can only be changed while it is DRAFT", o.ID, o.Status)
	}
	return nil
}

func decideAddItem(it OrderItem) decision {
	return func(o Order) (eventstore.NewEvent, error) {
		if err := requireDraftForItems(o); err != nil {
			return eventstore.NewEvent{}, err
		}
		if i := indexOfSKU(o.Items, it.SKU); i >= 0 {
			line := o.Items[i]
			if line.UnitPriceCents != it.UnitPriceCents {
				return eventstore.NewEvent{}, ruleError("sku %q is already in order %s at %d cents per unit; add it at that price or remove it first",
					it.SKU, o.ID, line.UnitPriceCents)
			}
			if line.Quantity+it.Quantity > MaxItemQuantity {
				return eventstore.NewEvent{}, ruleError("sku %q already has quantity %d in order %s; adding %d would exceed the limit of %d",
					it.SKU, line.Quantity, o.ID, it.Quantity, MaxItemQuantity)
			}
		} else if len(o.Items) >= MaxOrderItems {
			return eventstore.NewEvent{}, ruleError("order %s already holds %d different skus, the most an order may hold", o.ID, MaxOrderItems)
		}
		return newEvent(EventOrderItemAdded, it)
	}
}

func decideRemoveItem(sku string) decision {
	return func(o Order) (eventstore.NewEvent, error) {
		if err := requireDraftForItems(o); err != nil {
			return eventstore.NewEvent{}, err
		}
		if indexOfSKU(o.Items, sku) < 0 {
			return eventstore.NewEvent{}, ruleError("order %s has no item with sku %q", o.ID, sku)
		}
		return newEvent(EventOrderItemRemoved, OrderItemRemovedData{SKU: sku})
	}
}

func decidePlace() decision {
	return func(o Order) (eventstore.NewEvent, error) {
		if o.Status != StatusDraft {
			return eventstore.NewEvent{}, ruleError("order %s is %s; only a DRAFT order can be placed", o.ID, o.Status)
		}
		if len(o.Items) == 0 {
			return eventstore.NewEvent{}, ruleError("order %s has no items; add at least one before placing it", o.ID)
		}
		return newEvent(EventOrderPlaced, OrderPlacedData{})
	}
}

func decidePay(amountCents int64) decision {
	return func(o Order) (eventstore.NewEvent, error) {
		if o.Status != StatusPlaced {
			return eventstore.NewEvent{}, ruleError("order %s is %s; only a PLACED order can be paid", o.ID, o.Status)
		}
		if amountCents != o.TotalCents {
			return eventstore.NewEvent{}, ruleError("payment of %d cents does not match the total of order %s, %d cents",
				amountCents, o.ID, o.TotalCents)
		}
		return newEvent(EventOrderPaid, OrderPaidData{AmountCents: amountCents})
	}
}

func decideShip(trackingNumber string) decision {
	return func(o Order) (eventstore.NewEvent, error) {
		if o.Status != StatusPaid {
			return eventstore.NewEvent{}, ruleError("order %s is %s; only a PAID order can be shipped", o.ID, o.Status)
		}
		return newEvent(EventOrderShipped, OrderShippedData{TrackingNumber: trackingNumber})
	}
}

func decideCancel(reason string) decision {
	return func(o Order) (eventstore.NewEvent, error) {
		switch o.Status {
		case StatusDraft, StatusPlaced, StatusPaid:
			return newEvent(EventOrderCancelled, OrderCancelledData{Reason: reason})
		}
		return eventstore.NewEvent{}, ruleError("order %s is %s; only a DRAFT, PLACED or PAID order can be cancelled", o.ID, o.Status)
	}
}
