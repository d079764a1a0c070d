package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

// evAt builds the event with version v of order-o1, recorded v seconds after t0.
func evAt(v int64, typ, data string) eventstore.Event {
	return eventstore.Event{StreamID: "order-o1", Version: v, Position: 10 * v, Type: typ,
		Data: json.RawMessage(data), RecordedAt: t0.Add(time.Duration(v) * time.Second)}
}

func at(v int64) *time.Time {
	t := t0.Add(time.Duration(v) * time.Second)
	return &t
}

func str(s string) *string { return &s }

func orderJSON(t *testing.T, o Order) string {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fold(events ...eventstore.Event) Order {
	p := OrderProjection{}
	o := p.Initial()
	for _, e := range events {
		o = p.Apply(o, e)
	}
	return o
}

var created = evAt(1, EventOrderCreated, `{"customerId":"c-1","items":[{"sku":"A","quantity":2,"unitPriceCents":150}]}`)

func TestOrderFold(t *testing.T) {
	base := Order{ID: "o1", Version: 1, Position: 10, Status: StatusDraft, CustomerID: "c-1",
		Items: []OrderItem{{SKU: "A", Quantity: 2, UnitPriceCents: 150}}, TotalCents: 300,
		CreatedAt: *at(1), UpdatedAt: *at(1)}
	with := func(f func(o *Order)) Order {
		o := base
		o.Items = append([]OrderItem{}, base.Items...)
		f(&o)
		return o
	}
	tests := []struct {
		name   string
		events []eventstore.Event
		want   Order
	}{
		{"created", []eventstore.Event{created}, base},
		{"created without items", []eventstore.Event{evAt(1, EventOrderCreated, `{"customerId":"c-1","items":[]}`)},
			with(func(o *Order) { o.Items, o.TotalCents = []OrderItem{}, 0 })},
		{"item added", []eventstore.Event{created, evAt(2, EventOrderItemAdded, `{"sku":"B","quantity":1,"unitPriceCents":1000}`)},
			with(func(o *Order) {
				o.Version, o.Position, o.UpdatedAt = 2, 20, *at(2)
				o.Items = append(o.Items, OrderItem{SKU: "B", Quantity: 1, UnitPriceCents: 1000})
				o.TotalCents = 1300
			})},
		{"same sku adds to its quantity", []eventstore.Event{created, evAt(2, EventOrderItemAdded, `{"sku":"A","quantity":3,"unitPriceCents":150}`)},
			with(func(o *Order) {
				o.Version, o.Position, o.UpdatedAt = 2, 20, *at(2)
				o.Items[0].Quantity, o.TotalCents = 5, 750
			})},
		{"item removed", []eventstore.Event{created, evAt(2, EventOrderItemRemoved, `{"sku":"A"}`)},
			with(func(o *Order) {
				o.Version, o.Position, o.UpdatedAt = 2, 20, *at(2)
				o.Items, o.TotalCents = []OrderItem{}, 0
			})},
		{"placed, paid, shipped", []eventstore.Event{created, evAt(2, EventOrderPlaced, `{}`),
			evAt(3, EventOrderPaid, `{"amountCents":300}`), evAt(4, EventOrderShipped, `{"trackingNumber":"T1"}`)},
			with(func(o *Order) {
				o.Version, o.Position, o.UpdatedAt = 4, 40, *at(4)
				o.Status, o.PlacedAt, o.PaidAt, o.ShippedAt, o.TrackingNumber = StatusShipped, at(2), at(3), at(4), str("T1")
			})},
		{"cancelled", []eventstore.Event{created, evAt(2, EventOrderPlaced, `{}`), evAt(3, EventOrderCancelled, `{"reason":"late"}`)},
			with(func(o *Order) {
				o.Version, o.Position, o.UpdatedAt = 3, 30, *at(3)
				o.Status, o.PlacedAt, o.CancelledAt, o.CancelReason = StatusCancelled, at(2), at(3), str("late")
			})},
		{"unknown types and bad data only advance the version", []eventstore.Event{created,
			evAt(2, "SomethingElse", `{"customerId":"x"}`), evAt(3, EventOrderItemAdded, `"not an object"`)},
			with(func(o *Order) { o.Version, o.Position, o.UpdatedAt = 3, 30, *at(3) })},
		{"a second OrderCreated changes nothing", []eventstore.Event{created,
			evAt(2, EventOrderCreated, `{"customerId":"c-2","items":[]}`)},
			with(func(o *Order) { o.Version, o.Position, o.UpdatedAt = 2, 20, *at(2) })},
		{"events before OrderCreated are ignored", []eventstore.Event{evAt(1, EventOrderPaid, `{"amountCents":1}`),
			evAt(2, EventOrderCreated, `{"customerId":"c-1","items":[]}`)},
			Order{ID: "o1", Version: 2, Position: 20, Status: StatusDraft, CustomerID: "c-1", Items: []OrderItem{},
				CreatedAt: *at(2), UpdatedAt: *at(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := orderJSON(t, fold(tc.events...)), orderJSON(t, tc.want); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestOrderFoldDoesNotModifyItsInput(t *testing.T) {
	o := fold(created)
	before := orderJSON(t, o)
	p := OrderProjection{}
	for _, e := range []eventstore.Event{
		evAt(2, EventOrderItemAdded, `{"sku":"A","quantity":3,"unitPriceCents":150}`),
		evAt(2, EventOrderItemRemoved, `{"sku":"A"}`),
		evAt(2, EventOrderShipped, `{"trackingNumber":"T"}`),
	} {
		p.Apply(o, e)
	}
	if after := orderJSON(t, o); after != before {
		t.Fatalf("Apply modified its input:\n%s\n%s", before, after)
	}
}

// orderIn builds an order in a status with the given items.
func orderIn(status OrderStatus, items ...OrderItem) Order {
	return Order{ID: "o1", Version: 3, Status: status, CustomerID: "c-1", Items: items, TotalCents: totalOf(items),
		CreatedAt: t0}
}

func item(sku string, q, p int64) OrderItem {
	return OrderItem{SKU: sku, Quantity: q, UnitPriceCents: p}
}

func TestOrderRules(t *testing.T) {
	a := item("A", 2, 150)
	tests := []struct {
		name      string
		order     Order
		decide    decision
		wantType  string
		wantData  string
		wantError string // the RuleError's exact message
	}{
		{"add to draft", orderIn(StatusDraft), decideAddItem(a), EventOrderItemAdded, `{"sku":"A","quantity":2,"unitPriceCents":150}`, ""},
		{"add same sku and price", orderIn(StatusDraft, a), decideAddItem(item("A", 9998, 150)), EventOrderItemAdded, `{"sku":"A","quantity":9998,"unitPriceCents":150}`, ""},
		{"add beyond 10,000 in total", orderIn(StatusDraft, a), decideAddItem(item("A", 9999, 150)), "", "",
			`sku "A" already has quantity 2 in order o1; adding 9999 would exceed the limit of 10000`},
		{"add same sku at another price", orderIn(StatusDraft, a), decideAddItem(item("A", 1, 151)), "", "",
			`sku "A" is already in order o1 at 150 cents per unit; add it at that price or remove it first`},
		{"add to placed", orderIn(StatusPlaced, a), decideAddItem(a), "", "",
			"order o1 is PLACED; its items can only be changed while it is DRAFT"},
		{"add to cancelled", orderIn(StatusCancelled), decideAddItem(a), "", "",
			"order o1 is CANCELLED; its items can only be changed while it is DRAFT"},
		{"remove present sku", orderIn(StatusDraft, a), decideRemoveItem("A"), EventOrderItemRemoved, `{"sku":"A"}`, ""},
		{"remove absent sku", orderIn(StatusDraft, a), decideRemoveItem("B"), "", "", `order o1 has no item with sku "B"`},
		{"remove from paid", orderIn(StatusPaid, a), decideRemoveItem("A"), "", "",
			"order o1 is PAID; its items can only be changed while it is DRAFT"},
		{"place draft with items", orderIn(StatusDraft, a), decidePlace(), EventOrderPlaced, `{}`, ""},
		{"place empty draft", orderIn(StatusDraft), decidePlace(), "", "", "order o1 has no items; add at least one before placing it"},
		{"place placed", orderIn(StatusPlaced, a), decidePlace(), "", "", "order o1 is PLACED; only a DRAFT order can be placed"},
		{"pay placed, exact amount", orderIn(StatusPlaced, a), decidePay(300), EventOrderPaid, `{"amountCents":300}`, ""},
		{"pay placed, wrong amount", orderIn(StatusPlaced, a), decidePay(299), "", "",
			"payment of 299 cents does not match the total of order o1, 300 cents"},
		{"pay draft", orderIn(StatusDraft, a), decidePay(300), "", "", "order o1 is DRAFT; only a PLACED order can be paid"},
		{"pay paid", orderIn(StatusPaid, a), decidePay(300), "", "", "order o1 is PAID; only a PLACED order can be paid"},
		{"ship paid", orderIn(StatusPaid, a), decideShip("T1"), EventOrderShipped, `{"trackingNumber":"T1"}`, ""},
		{"ship placed", orderIn(StatusPlaced, a), decideShip("T1"), "", "", "order o1 is PLACED; only a PAID order can be shipped"},
		{"ship shipped", orderIn(StatusShipped, a), decideShip("T1"), "", "", "order o1 is SHIPPED; only a PAID order can be shipped"},
		{"cancel draft", orderIn(StatusDraft), decideCancel("r"), EventOrderCancelled, `{"reason":"r"}`, ""},
		{"cancel placed", orderIn(StatusPlaced, a), decideCancel("r"), EventOrderCancelled, `{"reason":"r"}`, ""},
		{"cancel paid", orderIn(StatusPaid, a), decideCancel("r"), EventOrderCancelled, `{"reason":"r"}`, ""},
		{"cancel shipped", orderIn(StatusShipped, a), decideCancel("r"), "", "",
			"order o1 is SHIPPED; only a DRAFT, PLACED or PAID order can be cancelled"},
		{"cancel cancelled", orderIn(StatusCancelled), decideCancel("r"), "", "",
			"order o1 is CANCELLED; only a DRAFT, PLACED or PAID order can be cancelled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := tc.decide(tc.order)
			if tc.wantError != "" {
				var re *RuleError
				if !errors.As(err, &re) || !errors.Is(err, ErrInvalidState) {
					t.Fatalf("got %v (%T), want a *RuleError", err, err)
				}
				if re.Msg != tc.wantError {
					t.Fatalf("message %q, want %q", re.Msg, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if ev.Type != tc.wantType || string(ev.Data) != tc.wantData {
				t.Fatalf("got %s %s, want %s %s", ev.Type, ev.Data, tc.wantType, tc.wantData)
			}
		})
	}
}

func TestOrderTooManySkus(t *testing.T) {
	items := make([]OrderItem, MaxOrderItems)
	for i := range items {
		items[i] = item(fmt.Sprintf("S%d", i), 1, 1)
	}
	_, err := decideAddItem(item("new", 1, 1))(orderIn(StatusDraft, items...))
	if !errors.Is(err, ErrInvalidState) {
		t.Fatalf("got %v, want INVALID_STATE", err)
	}
}

func TestOrderInputValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		err  error
		want string // exact message; "" = valid
	}{
		{"item ok", validateItem(item(long(64), 10000, 1_000_000_000)), ""},
		{"free item ok", validateItem(item("A", 1, 0)), ""},
		{"multibyte sku counts characters", validateItem(item(strings.Repeat("é", 64), 1, 0)), ""},
		{"empty sku", validateItem(item("", 1, 1)), "invalid input: sku must be 1 to 64 characters long, got 0"},
		{"long sku", validateItem(item(long(65), 1, 1)), "invalid input: sku must be 1 to 64 characters long, got 65"},
		{"zero quantity", validateItem(item("A", 0, 1)), `invalid input: quantity of sku "A" must be between 1 and 10000, got 0`},
		{"huge quantity", validateItem(item("A", 10001, 1)), `invalid input: quantity of sku "A" must be between 1 and 10000, got 10001`},
		{"negative price", validateItem(item("A", 1, -1)), `invalid input: unitPriceCents of sku "A" must be between 0 and 1000000000, got -1`},
		{"huge price", validateItem(item("A", 1, 1_000_000_001)), `invalid input: unitPriceCents of sku "A" must be between 0 and 1000000000, got 1000000001`},
		{"order id ok", validateOrderID("a-B_9.x"), ""},
		{"empty order id", validateOrderID(""), "invalid input: the order id must not be empty"},
		{"order id with a space", validateOrderID("a b"), `invalid input: order id "a b" cannot name a stream: stream id contains ' ' at offset 7; allowed are A-Z a-z 0-9 and - _ . : @ / + = # ~ $`},
		{"order id too long", validateOrderID(long(251)), "invalid input: order id \"" + long(251) + "\" cannot name a stream: stream id is 257 characters long; the limit is 256"},
		{"customer ok", func() error { _, err := newOrderCreated(long(256), nil); return err }(), ""},
		{"customer empty", func() error { _, err := newOrderCreated("", nil); return err }(), "invalid input: customerId must be 1 to 256 characters long, got 0"},
		{"customer too long", func() error { _, err := newOrderCreated(long(257), nil); return err }(), "invalid input: customerId must be 1 to 256 characters long, got 257"},
		{"created items with two prices", func() error {
			_, err := newOrderCreated("c", []OrderItem{item("A", 1, 1), item("A", 1, 2)})
			return err
		}(), `invalid input: sku "A" is listed twice with different prices`},
		{"created items above the quantity limit", func() error {
			_, err := newOrderCreated("c", []OrderItem{item("A", 6000, 1), item("A", 5000, 1)})
			return err
		}(), `invalid input: sku "A" is listed with a total quantity above 10000`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("unexpected error %v", tc.err)
				}
				return
			}
			if !errors.Is(tc.err, ErrInvalidInput) || tc.err.Error() != tc.want {
				t.Fatalf("got %v, want %q (ErrInvalidInput)", tc.err, tc.want)
			}
		})
	}
}

func TestOrderCreatedMergesRepeatedSkus(t *testing.T) {
	d, err := newOrderCreated("c", []OrderItem{item("A", 1, 5), item("B", 2, 7), item("A", 3, 5)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	if want := `{"customerId":"c","items":[{"sku":"A","quantity":4,"unitPriceCents":5},{"sku":"B","quantity":2,"unitPriceCents":7}]}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}
