package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// ---- A reference order fold, written independently of the production one.

type refItem struct {
	SKU   string `json:"sku"`
	Qty   int64  `json:"quantity"`
	Price int64  `json:"unitPriceCents"`
}

type refOrder struct {
	id, customer, status, reason, tracking string
	items                                  []refItem
	version, position, createdPos          int64
	created, updated                       time.Time
	placed, paid, shipped, cancelled       *time.Time
}

func (r refOrder) total() int64 {
	var t int64
	for _, it := range r.items {
		t += it.Qty * it.Price
	}
	return t
}

// applyRef returns the order after e; it copies what it changes.
func applyRef(r refOrder, e eventstore.Event) refOrder {
	r.version, r.position, r.updated = e.Version, e.Position, e.RecordedAt
	when := e.RecordedAt
	var d struct {
		CustomerID     string    `json:"customerId"`
		Items          []refItem `json:"items"`
		SKU            string    `json:"sku"`
		Quantity       int64     `json:"quantity"`
		UnitPriceCents int64     `json:"unitPriceCents"`
		TrackingNumber string    `json:"trackingNumber"`
		Reason         string    `json:"reason"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		panic(err)
	}
	switch e.Type {
	case "OrderCreated":
		r.id, r.customer, r.status, r.created, r.createdPos = e.StreamID[len("order-"):], d.CustomerID, "DRAFT", when, e.Position
		r.items = append([]refItem{}, d.Items...)
	case "OrderItemAdded":
		items := append([]refItem{}, r.items...)
		found := false
		for i := range items {
			if items[i].SKU == d.SKU {
				items[i].Qty += d.Quantity
				found = true
			}
		}
		if !found {
			items = append(items, refItem{d.SKU, d.Quantity, d.UnitPriceCents})
		}
		r.items = items
	case "OrderItemRemoved":
		var items []refItem
		for _, it := range r.items {
			if it.SKU != d.SKU {
				items = append(items, it)
			}
		}
		r.items = items
	case "OrderPlaced":
		r.status, r.placed = "PLACED", &when
	case "OrderPaid":
		r.status, r.paid = "PAID", &when
	case "OrderShipped":
		r.status, r.shipped, r.tracking = "SHIPPED", &when, d.TrackingNumber
	case "OrderCancelled":
		r.status, r.cancelled, r.reason = "CANCELLED", &when, d.Reason
	default:
		panic("unexpected event " + e.Type)
	}
	return r
}

// asOrder renders the reference as the JSON an Order must marshal to.
func (r refOrder) asOrder() map[string]any {
	items := []any{}
	for _, it := range r.items {
		items = append(items, map[string]any{"sku": it.SKU, "quantity": it.Qty, "unitPriceCents": it.Price})
	}
	m := map[string]any{"id": r.id, "version": r.version, "position": r.position, "status": r.status,
		"customerId": r.customer, "items": items, "totalCents": r.total(), "createdAt": r.created, "updatedAt": r.updated}
	for k, v := range map[string]*time.Time{"placedAt": r.placed, "paidAt": r.paid, "shippedAt": r.shipped, "cancelledAt": r.cancelled} {
		if v != nil {
			m[k] = *v
		}
	}
	if r.cancelled != nil {
		m["cancelReason"] = r.reason
	}
	if r.shipped != nil {
		m["trackingNumber"] = r.tracking
	}
	return m
}

// canon re-encodes JSON so that key order does not matter.
func canon(t testing.TB, v any) string {
	t.Helper()
	var x any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &x); err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, x)
}

// refAt folds the order events among the first n events of the log.
type refState map[string]refOrder

func foldRef(events []eventstore.Event) refState {
	st := refState{}
	for _, e := range events {
		if len(e.StreamID) > 6 && e.StreamID[:6] == "order-" {
			st[e.StreamID[6:]] = applyRef(st[e.StreamID[6:]], e)
		}
	}
	return st
}

// list returns the orders matching, in creation order.
func (st refState) list(status, customer string) []refOrder {
	var out []refOrder
	for _, r := range st {
		if (status == "" || r.status == status) && (customer == "" || r.customer == customer) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].createdPos < out[j].createdPos })
	return out
}

// ---- The generated history.

const (
	histOrders   = 50
	histCommands = 2000
	histWorkers  = 10
)

var skuPrices = map[string]int64{"apple": 30, "bread": 250, "cheese": 899, "dates": 1200, "eggs": 0, "flour": 175}
var skus = []string{"apple", "bread", "cheese", "dates", "eggs", "flour"}

type histStats struct {
	mu     sync.Mutex
	byKind map[string]int
}

func (h *histStats) count(kind string) {
	h.mu.Lock()
	h.byKind[kind]++
	h.mu.Unlock()
}

// playWorker runs n random commands on the orders it owns (no other worker
// touches them, so each outcome can be predicted from what it has seen).
// expect returns the outcome the rules predict; the test fails on any other.
func playWorker(t *testing.T, ctx context.Context, store *eventstore.Store, svc *projections.Service, w, n int, stats *histStats) {
	rng := rand.New(rand.NewPCG(2024, uint64(w)))
	var ids []string
	for i := w; i < histOrders; i += histWorkers {
		ids = append(ids, fmt.Sprintf("gen-%02d", i))
	}
	model := map[string]*projections.Order{}
	itemsOf := func(k int) []projections.OrderItem {
		var out []projections.OrderItem
		for range k {
			s := skus[rng.IntN(len(skus))]
			out = append(out, item(s, int64(1+rng.IntN(3)), skuPrices[s]))
		}
		return out
	}
	has := func(o *projections.Order, sku string) bool {
		for _, it := range o.Items {
			if it.SKU == sku {
				return true
			}
		}
		return false
	}
	for i := 0; i < n; i++ {
		id := ids[rng.IntN(len(ids))]
		m := model[id]
		var (
			name string
			want string
			do   func() (projections.Order, error)
		)
		okIf := func(cond bool) string {
			if cond {
				return "ok"
			}
			return "INVALID_STATE"
		}
		switch kind := chooseCommand(rng, m); kind {
		case "create":
			name, want = "create", "ok"
			customer, items := fmt.Sprintf("cust-%d", rng.IntN(7)), itemsOf(rng.IntN(3))
			do = func() (projections.Order, error) { return svc.CreateOrder(ctx, id, customer, items) }
		case "unknown":
			name, want = "place unknown", "NOT_FOUND"
			do = func() (projections.Order, error) { return svc.PlaceOrder(ctx, id, nil) }
		case "repeat create":
			// The create's content is the first event; the model only knows
			// the current state, so repeat what the log holds.
			evs, err := store.ReadStream(ctx, projections.OrderStreamID(id), eventstore.ReadStreamOptions{Limit: 1})
			if err != nil {
				t.Error(err)
				return
			}
			var d projections.OrderCreatedData
			if err := json.Unmarshal(evs[0].Data, &d); err != nil {
				t.Error(err)
				return
			}
			name, want = kind, "ok"
			do = func() (projections.Order, error) { return svc.CreateOrder(ctx, id, d.CustomerID, d.Items) }
		case "create again":
			name, want = "create again, other content", "INVALID_STATE"
			do = func() (projections.Order, error) { return svc.CreateOrder(ctx, id, "someone-else", nil) }
		case "add", "add bad quantity", "add at another price":
			s := skus[rng.IntN(len(skus))]
			if kind == "add at another price" && len(m.Items) > 0 {
				s = m.Items[rng.IntN(len(m.Items))].SKU
			}
			it := item(s, int64(1+rng.IntN(3)), skuPrices[s])
			switch {
			case kind == "add bad quantity":
				name, want, it.Quantity = kind, "BAD_USER_INPUT", 0
			case kind == "add at another price" && has(m, s):
				name, want, it.UnitPriceCents = kind, "INVALID_STATE", it.UnitPriceCents+1
			default:
				name, want = "add", okIf(m.Status == projections.StatusDraft)
			}
			do = func() (projections.Order, error) { return svc.AddOrderItem(ctx, id, it, nil) }
		case "remove", "remove present":
			s := skus[rng.IntN(len(skus))]
			if kind == "remove present" && len(m.Items) > 0 {
				s = m.Items[rng.IntN(len(m.Items))].SKU
			}
			name, want = "remove", okIf(m.Status == projections.StatusDraft && has(m, s))
			do = func() (projections.Order, error) { return svc.RemoveOrderItem(ctx, id, s, nil) }
		case "place":
			name, want = kind, okIf(m.Status == projections.StatusDraft && len(m.Items) > 0)
			do = func() (projections.Order, error) { return svc.PlaceOrder(ctx, id, nil) }
		case "pay", "pay wrong amount":
			amount := m.TotalCents
			if kind == "pay wrong amount" {
				amount++
			}
			name, want = "pay", okIf(m.Status == projections.StatusPlaced && amount == m.TotalCents)
			do = func() (projections.Order, error) { return svc.PayOrder(ctx, id, amount, nil) }
		case "ship":
			name, want = kind, okIf(m.Status == projections.StatusPaid)
			do = func() (projections.Order, error) { return svc.ShipOrder(ctx, id, "track-"+id, nil) }
		case "cancel":
			name = kind
			want = okIf(m.Status == projections.StatusDraft || m.Status == projections.StatusPlaced || m.Status == projections.StatusPaid)
			do = func() (projections.Order, error) { return svc.CancelOrder(ctx, id, fmt.Sprint("reason ", i), nil) }
		case "stale version":
			name, want = "place, stale expected version", "WRONG_EXPECTED_VERSION"
			stale := m.Version - 1 - int64(rng.IntN(int(m.Version)))
			do = func() (projections.Order, error) { return svc.PlaceOrder(ctx, id, &stale) }
		case "expected version":
			name, want = "add, expected version", okIf(m.Status == projections.StatusDraft)
			v, s := m.Version, skus[rng.IntN(len(skus))]
			do = func() (projections.Order, error) { return svc.AddOrderItem(ctx, id, item(s, 1, skuPrices[s]), &v) }
		case "other stream":
			// Other streams share the log: the read model must skip them.
			name, want = kind, "ok"
			do = func() (projections.Order, error) {
				_, err := store.Append(ctx, fmt.Sprintf("cart-%d", w), eventstore.Any{},
					eventstore.NewEvent{Type: "CartTouched", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
				return projections.Order{}, err
			}
		default:
			panic(kind)
		}
		var before int64
		if m != nil {
			before = m.Version
		}
		o, err := do()
		if got := errKind(err); got != want {
			t.Errorf("worker %d command %d %s on %s: got %s (%v), want %s", w, i, name, id, got, err, want)
			return
		}
		stats.count(name + ": " + want)
		if name == "other stream" {
			continue
		}
		h, herr := store.Head(ctx, projections.OrderStreamID(id))
		switch {
		case err != nil && (herr == nil && h.Version != before):
			t.Errorf("%s on %s failed but the stream moved from %d to %d", name, id, before, h.Version)
			return
		case err == nil && name == "repeat create" && o.Version != before:
			t.Errorf("repeat create of %s returned version %d, want %d", id, o.Version, before)
			return
		case err == nil && name != "repeat create" && (o.Version != before+1 || h.Version != o.Version):
			t.Errorf("%s on %s returned version %d (head %d), want %d", name, id, o.Version, h.Version, before+1)
			return
		}
		if err == nil {
			model[id] = &o
		}
	}
}

// chooseCommand picks the next command: mostly one that the order's status
// makes plausible, so orders live through their lifecycle, and about a
// quarter of the time any command at all, most of which break a rule.
func chooseCommand(rng *rand.Rand, m *projections.Order) string {
	pick := func(weighted ...any) string {
		total := 0
		for i := 1; i < len(weighted); i += 2 {
			total += weighted[i].(int)
		}
		x := rng.IntN(total)
		for i := 0; i < len(weighted); i += 2 {
			if x -= weighted[i+1].(int); x < 0 {
				return weighted[i].(string)
			}
		}
		panic("unreachable")
	}
	if m == nil {
		return pick("create", 9, "unknown", 1)
	}
	if rng.IntN(4) == 0 {
		return pick("repeat create", 1, "create again", 1, "add", 2, "add bad quantity", 1, "add at another price", 1,
			"remove", 2, "place", 2, "pay", 1, "pay wrong amount", 1, "ship", 2, "cancel", 1, "stale version", 2,
			"expected version", 1, "other stream", 2)
	}
	switch m.Status {
	case projections.StatusDraft:
		return pick("add", 24, "expected version", 6, "remove present", 12, "place", 1, "cancel", 1)
	case projections.StatusPlaced:
		return pick("pay", 8, "cancel", 1, "other stream", 1)
	case projections.StatusPaid:
		return pick("ship", 8, "cancel", 1, "other stream", 1)
	}
	return pick("other stream", 1, "add", 1, "ship", 1)
}

func TestGeneratedHistory(t *testing.T) {
	store, _, _ := openStore(t)
	// A small snapshot interval, so that reads cross snapshots all the time.
	svc := openService(t, store, projections.Options{SnapshotEvery: 5})
	ctx := ctxT(t)

	start := time.Now()
	stats := &histStats{byKind: map[string]int{}}
	var wg sync.WaitGroup
	for w := range histWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			playWorker(t, ctx, store, svc, w, histCommands/histWorkers, stats)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	played := time.Since(start)

	var events []eventstore.Event
	for after := int64(0); ; {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		events = append(events, page...)
		after = page[len(page)-1].Position
	}
	head := events[len(events)-1].Position
	t.Logf("played %d commands in %v: %d events; outcomes %v", histCommands, played.Round(time.Millisecond), len(events), stats.byKind)

	ids := make([]string, histOrders)
	for i := range ids {
		ids[i] = fmt.Sprintf("gen-%02d", i)
	}
	type filter struct {
		status   *projections.OrderStatus
		customer string
	}
	filters := []filter{{}, {customer: "cust-0"}, {customer: "cust-3"},
		{status: ptr(projections.StatusPaid), customer: "cust-1"}}
	for _, s := range projections.AllStatuses {
		filters = append(filters, filter{status: ptr(s)})
	}

	// check compares everything the service answers at one point with the
	// reference state ref, the fold of the log up to position pos.
	checks := 0
	check := func(label string, at eventstore.At, ref refState, pos int64, when time.Time) {
		t.Helper()
		for _, id := range ids {
			got, err := svc.Order(ctx, id, at)
			r, exists := ref[id]
			switch {
			case !exists && errKind(err) != "NOT_FOUND":
				t.Fatalf("%s: order %s: got %v, want NOT_FOUND", label, id, err)
			case exists && err != nil:
				t.Fatalf("%s: order %s: %v", label, id, err)
			case exists && canon(t, got) != canon(t, r.asOrder()):
				t.Fatalf("%s: order %s:\ngot  %s\nwant %s", label, id, canon(t, got), canon(t, r.asOrder()))
			}
			checks++
		}
		for _, f := range filters {
			page, err := svc.Orders(ctx, projections.ListOrders{At: at, Status: f.status, CustomerID: f.customer, First: 1000})
			if err != nil {
				t.Fatalf("%s: orders: %v", label, err)
			}
			status := ""
			if f.status != nil {
				status = string(*f.status)
			}
			want := []any{}
			for _, r := range ref.list(status, f.customer) {
				want = append(want, r.asOrder())
			}
			if page.TotalCount != len(want) || page.HasNext || canon(t, page.Orders) != canon(t, want) {
				t.Fatalf("%s: orders %+v: got %d (%d total)\n%s\nwant %d\n%s", label, f, len(page.Orders), page.TotalCount,
					canon(t, page.Orders), len(want), canon(t, want))
			}
			checks++
		}
		st, err := svc.OrderStats(ctx, at)
		if err != nil {
			t.Fatalf("%s: stats: %v", label, err)
		}
		counts := map[string]int{}
		var revenue int64
		for _, r := range ref {
			counts[r.status]++
			if r.status == "PAID" || r.status == "SHIPPED" {
				revenue += r.total()
			}
		}
		wantStats := projections.OrderStats{At: when, Position: pos, RevenueCents: revenue}
		for _, s := range projections.AllStatuses {
			wantStats.CountByStatus = append(wantStats.CountByStatus, projections.StatusCount{Status: s, Count: counts[string(s)]})
		}
		if mustJSON(t, st) != mustJSON(t, wantStats) {
			t.Fatalf("%s: stats\ngot  %s\nwant %s", label, mustJSON(t, st), mustJSON(t, wantStats))
		}
		checks++
	}

	verifyStart := time.Now()
	// Every 25th position, and the head.
	positions := []int64{}
	for p := int64(25); p < head; p += 25 {
		positions = append(positions, p)
	}
	positions = append(positions, head)
	for _, p := range positions {
		check(fmt.Sprintf("position %d", p), eventstore.AtPosition(p), foldRef(events[:p]), p, events[p-1].RecordedAt)
	}
	// Times: the recordedAt of every 40th event. Several events may share a
	// recordedAt (one group commit), so the reference is every event
	// recorded at or before it, which may reach past that event.
	for i := 0; i < len(events); i += 40 {
		when := events[i].RecordedAt
		n := sort.Search(len(events), func(j int) bool { return events[j].RecordedAt.After(when) })
		check(fmt.Sprintf("time of position %d", events[i].Position), eventstore.AtTime(when), foldRef(events[:n]),
			events[n-1].Position, when)
	}
	before := events[0].RecordedAt.Add(-time.Millisecond)
	check("before the log", eventstore.AtTime(before), refState{}, 0, before)
	t.Logf("verified %d answers at %d positions and %d times in %v", checks, len(positions),
		(len(events)+39)/40+1, time.Since(verifyStart).Round(time.Millisecond))
	st := svc.Stats()
	t.Logf("engine: %d folds, %d events folded (%.1f per fold), %d from snapshots, %d snapshots saved, %d dropped",
		st.Folds, st.EventsFolded, float64(st.EventsFolded)/float64(max(st.Folds, 1)), st.SnapshotsUsed, st.SnapshotsSaved, st.SnapshotsDropped)
}
