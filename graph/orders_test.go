package graph_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
)

// Tests of the order resolvers (issue 5) through the real endpoint. They
// need the projections service.

const orderFields = `id version position status customerId items { sku quantity unitPriceCents } totalCents
	createdAt updatedAt placedAt paidAt shippedAt cancelledAt cancelReason trackingNumber`

type orderItem struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unitPriceCents"`
}

type order struct {
	ID             string
	Version        int64
	Position       string
	Status         string
	CustomerID     string
	Items          []orderItem
	TotalCents     int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	PlacedAt       *time.Time
	PaidAt         *time.Time
	ShippedAt      *time.Time
	CancelledAt    *time.Time
	CancelReason   *string
	TrackingNumber *string
}

func (h *harness) createOrder(customer string, items ...orderItem) order {
	h.t.Helper()
	var out struct{ CreateOrder order }
	h.mustDo(`mutation($c: String!, $items: [OrderItemInput!]) { createOrder(customerId: $c, items: $items) { `+orderFields+` } }`,
		map[string]any{"c": customer, "items": items}, &out)
	return out.CreateOrder
}

// command runs an order mutation and returns the order or the errors.
func (h *harness) command(mutation string, vars map[string]any) (order, []gqlError) {
	h.t.Helper()
	data, errs := h.do(mutation, vars)
	var out map[string]*order
	_ = json.Unmarshal(data, &out)
	for _, o := range out {
		if o != nil {
			return *o, errs
		}
	}
	return order{}, errs
}

const (
	mAdd    = `mutation($id: ID!, $item: OrderItemInput!, $v: Int) { addOrderItem(orderId: $id, item: $item, expectedVersion: $v) { ` + orderFields + ` } }`
	mRemove = `mutation($id: ID!, $sku: String!, $v: Int) { removeOrderItem(orderId: $id, sku: $sku, expectedVersion: $v) { ` + orderFields + ` } }`
	mPlace  = `mutation($id: ID!, $v: Int) { placeOrder(orderId: $id, expectedVersion: $v) { ` + orderFields + ` } }`
	mPay    = `mutation($id: ID!, $amount: Int!, $v: Int) { payOrder(orderId: $id, amountCents: $amount, expectedVersion: $v) { ` + orderFields + ` } }`
	mShip   = `mutation($id: ID!, $tn: String!, $v: Int) { shipOrder(orderId: $id, trackingNumber: $tn, expectedVersion: $v) { ` + orderFields + ` } }`
	mCancel = `mutation($id: ID!, $reason: String!, $v: Int) { cancelOrder(orderId: $id, reason: $reason, expectedVersion: $v) { ` + orderFields + ` } }`
)

// TestOrderLifecycle walks an order from DRAFT to SHIPPED, checking each
// rule's error code on the way, and time travel to each step.
func TestOrderLifecycle(t *testing.T) {
	h := newHarness(t)
	o := h.createOrder("cust-1", orderItem{"apple", 2, 150})
	if o.Status != "DRAFT" || o.Version != 1 || o.TotalCents != 300 || o.CustomerID != "cust-1" || o.ID == "" {
		t.Fatalf("created %+v", o)
	}
	id := o.ID
	steps := []struct {
		name     string
		mutation string
		vars     map[string]any
		code     string // "" = succeeds
		status   string
	}{
		{"pay a draft", mPay, map[string]any{"amount": 300}, graph.CodeInvalidState, ""},
		{"ship a draft", mShip, map[string]any{"tn": "T1"}, graph.CodeInvalidState, ""},
		{"quantity 0", mAdd, map[string]any{"item": orderItem{"pear", 0, 10}}, graph.CodeBadUserInput, ""},
		{"empty sku", mAdd, map[string]any{"item": orderItem{"", 1, 10}}, graph.CodeBadUserInput, ""},
		{"stale expected version", mAdd, map[string]any{"item": orderItem{"pear", 1, 10}, "v": 0}, graph.CodeWrongExpectedVersion, ""},
		{"add an item", mAdd, map[string]any{"item": orderItem{"pear", 1, 100}, "v": 1}, "", "DRAFT"},
		{"same sku adds up", mAdd, map[string]any{"item": orderItem{"pear", 2, 100}}, "", "DRAFT"},
		{"remove a missing sku", mRemove, map[string]any{"sku": "kiwi"}, graph.CodeInvalidState, ""},
		{"remove an item", mRemove, map[string]any{"sku": "apple"}, "", "DRAFT"},
		{"place", mPlace, nil, "", "PLACED"},
		{"items only in draft", mAdd, map[string]any{"item": orderItem{"fig", 1, 1}}, graph.CodeInvalidState, ""},
		{"pay the wrong amount", mPay, map[string]any{"amount": 1}, graph.CodeInvalidState, ""},
		{"pay", mPay, map[string]any{"amount": 300}, "", "PAID"},
		{"ship", mShip, map[string]any{"tn": "TRACK-1"}, "", "SHIPPED"},
		{"cancel a shipped order", mCancel, map[string]any{"reason": "late"}, graph.CodeInvalidState, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h.t = t
			vars := map[string]any{"id": id}
			for k, v := range s.vars {
				vars[k] = v
			}
			got, errs := h.command(s.mutation, vars)
			if s.code != "" {
				e := wantCode(t, errs, s.code)
				if e.Message == "" {
					t.Error("no message")
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("errors %+v", errs)
			}
			if got.Status != s.status {
				t.Errorf("status %s, want %s", got.Status, s.status)
			}
		})
	}
	h.t = t
	var final struct{ Order order }
	h.mustDo(`query($id: ID!) { order(id: $id) { `+orderFields+` } }`, map[string]any{"id": id}, &final)
	f := final.Order
	if f.Status != "SHIPPED" || f.TotalCents != 300 || len(f.Items) != 1 || f.Items[0] != (orderItem{"pear", 3, 100}) ||
		f.PaidAt == nil || f.ShippedAt == nil || f.TrackingNumber == nil || *f.TrackingNumber != "TRACK-1" {
		t.Fatalf("final %+v", f)
	}
	// order(at: {time: paidAt}) shows the order as PAID.
	var paid struct{ Order order }
	h.mustDo(`query($id: ID!, $t: Time) { order(id: $id, at: {time: $t}) { status version } }`,
		map[string]any{"id": id, "t": f.PaidAt.Format(time.RFC3339Nano)}, &paid)
	if paid.Order.Status != "PAID" {
		t.Errorf("at paidAt: %+v", paid.Order)
	}
	var v1 struct{ Order *order }
	h.mustDo(`query($id: ID!) { order(id: $id, at: {version: 1}) { status items { sku } } }`, map[string]any{"id": id}, &v1)
	if v1.Order == nil || v1.Order.Status != "DRAFT" || len(v1.Order.Items) != 1 || v1.Order.Items[0].SKU != "apple" {
		t.Errorf("at version 1: %+v", v1.Order)
	}
	var before struct{ Order *order }
	h.mustDo(`query($id: ID!, $t: Time) { order(id: $id, at: {time: $t}) { status } }`,
		map[string]any{"id": id, "t": f.CreatedAt.Add(-time.Millisecond).Format(time.RFC3339Nano)}, &before)
	if before.Order != nil {
		t.Errorf("before it existed: %+v", before.Order)
	}
	var hist struct {
		OrderHistory []struct {
			Version int64
			Event   struct{ Type string }
			Order   struct{ Status string }
		}
	}
	h.mustDo(`query($id: ID!) { orderHistory(id: $id) { version event { type } order { status } } }`, map[string]any{"id": id}, &hist)
	if len(hist.OrderHistory) != int(f.Version) || hist.OrderHistory[len(hist.OrderHistory)-1].Order.Status != "SHIPPED" {
		t.Errorf("history %+v", hist.OrderHistory)
	}
}

func TestOrderErrors(t *testing.T) {
	h := newHarness(t)
	_, errs := h.command(mPlace, map[string]any{"id": "no-such-order"})
	wantCode(t, errs, graph.CodeNotFound)
	data, errs := h.do(`{ order(id: "no-such-order") { id } }`, nil)
	if len(errs) > 0 || string(data) != `{"order":null}` {
		t.Errorf("unknown order: %s %+v", data, errs)
	}
	_, errs = h.do(`{ orders(at: {version: 3}) { totalCount } }`, nil)
	wantCode(t, errs, graph.CodeBadUserInput)
	_, errs = h.do(`{ orders(first: 5000) { totalCount } }`, nil)
	wantCode(t, errs, graph.CodeBadUserInput)
	_, errs = h.do(`{ orderStatsSeries(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", stepSeconds: 1) { revenueCents } }`, nil)
	wantCode(t, errs, graph.CodeBadUserInput)
	_, errs = h.do(`{ orderStatsSeries(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", stepSeconds: 0) { revenueCents } }`, nil)
	wantCode(t, errs, graph.CodeBadUserInput)
}

// TestOrderListsAndStats checks orders(status:), paging, totalCount and
// orderStats against the orders created here.
func TestOrderListsAndStats(t *testing.T) {
	h := newHarness(t)
	var paidTotal int64
	for i := 0; i < 7; i++ {
		o := h.createOrder(fmt.Sprintf("c-%d", i%2), orderItem{"sku", int64(i + 1), 100})
		if i%3 == 0 {
			continue // stays DRAFT
		}
		_, errs := h.command(mPlace, map[string]any{"id": o.ID})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if i%3 == 2 {
			if _, errs := h.command(mPay, map[string]any{"id": o.ID, "amount": o.TotalCents}); len(errs) > 0 {
				t.Fatal(errs)
			}
			paidTotal += o.TotalCents
		}
	}
	var stats struct {
		OrderStats struct {
			Position      string
			CountByStatus []struct {
				Status string
				Count  int
			}
			RevenueCents int64
		}
	}
	h.mustDo(`{ orderStats { position countByStatus { status count } revenueCents } }`, nil, &stats)
	counts := map[string]int{}
	for _, c := range stats.OrderStats.CountByStatus {
		counts[c.Status] = c.Count
	}
	if counts["DRAFT"] != 3 || counts["PLACED"] != 2 || counts["PAID"] != 2 || stats.OrderStats.RevenueCents != paidTotal {
		t.Errorf("stats %+v, want 3 draft, 2 placed, 2 paid, revenue %d", stats.OrderStats, paidTotal)
	}
	seen := map[string]bool{}
	after := (*string)(nil)
	for {
		var page struct {
			Orders struct {
				Edges []struct {
					Cursor string
					Node   order
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
				TotalCount int
			}
		}
		h.mustDo(`query($after: String) { orders(status: DRAFT, first: 2, after: $after) {
			edges { cursor node { id status } } pageInfo { hasNextPage endCursor } totalCount } }`,
			map[string]any{"after": after}, &page)
		if page.Orders.TotalCount != 3 {
			t.Fatalf("totalCount %d", page.Orders.TotalCount)
		}
		for _, e := range page.Orders.Edges {
			if e.Node.Status != "DRAFT" || seen[e.Node.ID] {
				t.Fatalf("edge %+v (seen %v)", e, seen)
			}
			seen[e.Node.ID] = true
		}
		if !page.Orders.PageInfo.HasNextPage {
			break
		}
		after = page.Orders.PageInfo.EndCursor
	}
	if len(seen) != 3 {
		t.Errorf("paged %d drafts", len(seen))
	}
}

// TestConcurrentAddOrderItem: 16 concurrent adds without an expected version
// all succeed.
func TestConcurrentAddOrderItem(t *testing.T) {
	h := newHarness(t)
	o := h.createOrder("c")
	var wg sync.WaitGroup
	errs := make(chan []gqlError, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, e := h.gql.RawPost(mAdd, clientVars(map[string]any{"id": o.ID, "item": orderItem{fmt.Sprintf("sku-%d", i), 1, 1}})...)
			if e != nil {
				errs <- []gqlError{{Message: e.Error()}}
				return
			}
			if len(data.Errors) > 0 {
				var ge []gqlError
				_ = json.Unmarshal(data.Errors, &ge)
				errs <- ge
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("add failed: %+v", e)
	}
	var out struct{ Order order }
	h.mustDo(`query($id: ID!) { order(id: $id) { items { sku } } }`, map[string]any{"id": o.ID}, &out)
	if len(out.Order.Items) != 16 {
		t.Errorf("%d items, want 16", len(out.Order.Items))
	}
}

// TestOrderChangedSubscription delivers each new event of the order with the
// resulting state, from a version and live.
func TestOrderChangedSubscription(t *testing.T) {
	h := newHarness(t)
	o := h.createOrder("c", orderItem{"a", 1, 5})
	w := mustDialWS(t, h.srv.URL, protoTransportWS)
	w.subscribe("1", `subscription($id: ID!) { orderChanged(id: $id, afterVersion: 0) { version position recordedAt event { type } order { status version } } }`,
		map[string]any{"id": o.ID})
	if _, errs := h.command(mPlace, map[string]any{"id": o.ID}); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, want := range []struct {
		version int64
		status  string
	}{{1, "DRAFT"}, {2, "PLACED"}} {
		r := w.next(10 * time.Second)
		if r.kind != "next" || len(r.errors) > 0 {
			t.Fatalf("got %+v", r)
		}
		var d struct {
			OrderChanged struct {
				Version int64
				Order   struct {
					Status  string
					Version int64
				}
			}
		}
		_ = json.Unmarshal(r.data, &d)
		if d.OrderChanged.Version != want.version || d.OrderChanged.Order.Status != want.status || d.OrderChanged.Order.Version != want.version {
			t.Errorf("got %+v, want %+v", d.OrderChanged, want)
		}
	}
}
