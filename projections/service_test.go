package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
	"github.com/hindsight-dev/hindsight/projections/mongocheckpoint"
)

type step struct {
	do   func(ctx context.Context, s *projections.Service, id string) (projections.Order, error)
	want string // errKind of the result
}

func create(customer string, items ...projections.OrderItem) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.CreateOrder(ctx, id, customer, items)
	}, want: "ok"}
}

func add(it projections.OrderItem) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.AddOrderItem(ctx, id, it, nil)
	}, want: "ok"}
}

func remove(sku string) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.RemoveOrderItem(ctx, id, sku, nil)
	}, want: "ok"}
}

func place() step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.PlaceOrder(ctx, id, nil)
	}, want: "ok"}
}

func pay(amount int64) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.PayOrder(ctx, id, amount, nil)
	}, want: "ok"}
}

func ship(tracking string) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.ShipOrder(ctx, id, tracking, nil)
	}, want: "ok"}
}

func cancel(reason string) step {
	return step{do: func(ctx context.Context, s *projections.Service, id string) (projections.Order, error) {
		return s.CancelOrder(ctx, id, reason, nil)
	}, want: "ok"}
}

func (s step) fails(kind string) step { s.want = kind; return s }

// TestCommandsEnforceTheRules plays command sequences on fresh orders and
// checks each outcome and the final order. A failed command must write
// nothing.
func TestCommandsEnforceTheRules(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	a, b := item("A", 2, 150), item("B", 1, 1000)
	tests := []struct {
		name        string
		steps       []step
		wantStatus  projections.OrderStatus
		wantTotal   int64
		wantVersion int64
	}{
		{"full lifecycle", []step{create("c", a), add(b), place(), pay(1300), ship("T")}, projections.StatusShipped, 1300, 5},
		{"unknown order", []step{add(a).fails("NOT_FOUND"), place().fails("NOT_FOUND")}, "", 0, 0},
		{"bad create input", []step{create("").fails("BAD_USER_INPUT"), create("c", item("A", 0, 1)).fails("BAD_USER_INPUT")}, "", 0, 0},
		{"same sku adds to quantity", []step{create("c", a), add(item("A", 3, 150))}, projections.StatusDraft, 750, 2},
		{"same sku at another price", []step{create("c", a), add(item("A", 3, 151)).fails("INVALID_STATE")}, projections.StatusDraft, 300, 1},
		{"quantity limit across adds", []step{create("c", item("A", 10000, 1)), add(item("A", 1, 1)).fails("INVALID_STATE")}, projections.StatusDraft, 10000, 1},
		{"bad item input", []step{create("c"), add(item("", 1, 1)).fails("BAD_USER_INPUT"), add(item("A", 10001, 1)).fails("BAD_USER_INPUT"),
			add(item("A", 1, -1)).fails("BAD_USER_INPUT"), add(item(strings.Repeat("s", 65), 1, 1)).fails("BAD_USER_INPUT")}, projections.StatusDraft, 0, 1},
		{"remove", []step{create("c", a, b), remove("A"), remove("A").fails("INVALID_STATE")}, projections.StatusDraft, 1000, 2},
		{"items frozen after placing", []step{create("c", a), place(), add(b).fails("INVALID_STATE"), remove("A").fails("INVALID_STATE")}, projections.StatusPlaced, 300, 2},
		{"place needs items", []step{create("c"), place().fails("INVALID_STATE"), add(a), place(), place().fails("INVALID_STATE")}, projections.StatusPlaced, 300, 3},
		{"pay needs placed and the exact total", []step{create("c", a), pay(300).fails("INVALID_STATE"), place(), pay(299).fails("INVALID_STATE"),
			pay(-1).fails("BAD_USER_INPUT"), pay(300), pay(300).fails("INVALID_STATE")}, projections.StatusPaid, 300, 3},
		{"ship needs paid", []step{create("c", a), ship("T").fails("INVALID_STATE"), place(), ship("T").fails("INVALID_STATE"),
			pay(300), ship("").fails("BAD_USER_INPUT"), ship("T")}, projections.StatusShipped, 300, 4},
		{"cancel from draft", []step{create("c"), cancel("r"), cancel("r").fails("INVALID_STATE"), add(a).fails("INVALID_STATE")}, projections.StatusCancelled, 0, 2},
		{"cancel from paid", []step{create("c", a), place(), pay(300), cancel("").fails("BAD_USER_INPUT"), cancel("r")}, projections.StatusCancelled, 300, 4},
		{"no cancel after shipping", []step{create("c", a), place(), pay(300), ship("T"), cancel("r").fails("INVALID_STATE")}, projections.StatusShipped, 300, 4},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("rules-%d", i)
			for j, st := range tc.steps {
				var before int64
				if h, err := store.Head(ctx, projections.OrderStreamID(id)); err == nil {
					before = h.Version
				}
				_, err := st.do(ctx, svc, id)
				if got := errKind(err); got != st.want {
					t.Fatalf("step %d: got %s (%v), want %s", j, got, err, st.want)
				}
				var after int64
				if h, err := store.Head(ctx, projections.OrderStreamID(id)); err == nil {
					after = h.Version
				}
				if err != nil && after != before {
					t.Fatalf("step %d failed but the stream moved from version %d to %d", j, before, after)
				}
			}
			o, err := svc.Order(ctx, id, eventstore.Now())
			if tc.wantVersion == 0 {
				if !errors.Is(err, projections.ErrNotFound) {
					t.Fatalf("got %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != tc.wantStatus || o.TotalCents != tc.wantTotal || o.Version != tc.wantVersion {
				t.Fatalf("got status %s total %d version %d, want %s %d %d", o.Status, o.TotalCents, o.Version,
					tc.wantStatus, tc.wantTotal, tc.wantVersion)
			}
		})
	}
}

func TestRuleErrorsSayWhatIsWrong(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "msg", "c", nil); err != nil {
		t.Fatal(err)
	}
	_, err := svc.PlaceOrder(ctx, "msg", nil)
	var re *projections.RuleError
	if !errors.As(err, &re) || re.Msg != "order msg has no items; add at least one before placing it" {
		t.Fatalf("got %v", err)
	}
	_, err = svc.Order(ctx, "nope", eventstore.Now())
	if !errors.Is(err, projections.ErrNotFound) || err.Error() != `not found: order "nope" does not exist at that point` {
		t.Fatalf("got %v", err)
	}
	_, err = svc.Order(ctx, "no spaces", eventstore.Now())
	if !errors.Is(err, projections.ErrInvalidInput) {
		t.Fatalf("got %v, want ErrInvalidInput", err)
	}
}

func TestCreateOrderIsIdempotent(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	first, err := svc.CreateOrder(ctx, "idem", "c-1", []projections.OrderItem{item("A", 1, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddOrderItem(ctx, "idem", item("B", 1, 5), nil); err != nil {
		t.Fatal(err)
	}
	again, err := svc.CreateOrder(ctx, "idem", "c-1", []projections.OrderItem{item("A", 1, 100)})
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if again.Version != 2 || again.CreatedAt != first.CreatedAt || len(again.Items) != 2 {
		t.Fatalf("repeat returned %+v, want the existing order at version 2", again)
	}
	if h, _ := store.Head(ctx, "order-idem"); h.Version != 2 {
		t.Fatalf("the repeat wrote: version %d", h.Version)
	}
	_, err = svc.CreateOrder(ctx, "idem", "c-2", []projections.OrderItem{item("A", 1, 100)})
	if errKind(err) != "INVALID_STATE" || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("different content: got %v", err)
	}
	// Concurrent identical creates: all succeed, one event is written.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.CreateOrder(ctx, "race", "c", nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	if h, _ := store.Head(ctx, "order-race"); h.Version != 1 {
		t.Fatalf("concurrent identical creates wrote %d events", h.Version)
	}
	// Without an id, a UUIDv7 is generated.
	o, err := svc.CreateOrder(ctx, "", "c", nil)
	if err != nil || len(o.ID) != 36 || o.ID[14] != '7' {
		t.Fatalf("generated id %q, err %v", o.ID, err)
	}
}

func TestExpectedVersion(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{LagWait: 300 * time.Millisecond})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "ev", "c", nil); err != nil {
		t.Fatal(err)
	}
	o, err := svc.AddOrderItem(ctx, "ev", item("A", 1, 1), ptr(int64(1)))
	if err != nil || o.Version != 2 {
		t.Fatalf("matching expected version: %v, version %d", err, o.Version)
	}
	for _, expected := range []int64{1, 3, 100} {
		_, err = svc.AddOrderItem(ctx, "ev", item("B", 1, 1), ptr(expected))
		var wev *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wev) || wev.Actual != 2 || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("expected %d: got %v, want a conflict with actual version 2", expected, err)
		}
	}
	if _, err = svc.AddOrderItem(ctx, "ev", item("B", 1, 1), ptr(int64(-1))); errKind(err) != "BAD_USER_INPUT" {
		t.Fatalf("negative expected version: %v", err)
	}
	// A rule violation at the expected version is still a rule violation.
	if _, err = svc.PayOrder(ctx, "ev", 1, ptr(int64(2))); errKind(err) != "INVALID_STATE" {
		t.Fatalf("pay a draft: %v", err)
	}
	if h, _ := store.Head(ctx, "order-ev"); h.Version != 2 {
		t.Fatalf("stream at %d, want 2", h.Version)
	}
}

func TestConcurrentAddOrderItemAllSucceed(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "busy", "c", nil); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.AddOrderItem(ctx, "busy", item(fmt.Sprintf("sku-%02d", i), 1, int64(i)), nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
	}
	o, err := svc.Order(ctx, "busy", eventstore.Now())
	if err != nil {
		t.Fatal(err)
	}
	var skus []string
	for _, it := range o.Items {
		skus = append(skus, it.SKU)
	}
	sort.Strings(skus)
	if len(skus) != n || o.Version != n+1 || o.TotalCents != n*(n-1)/2 {
		t.Fatalf("got %d items %v, version %d, total %d", len(skus), skus, o.Version, o.TotalCents)
	}
	t.Logf("16 concurrent adds took %v", time.Since(start).Round(time.Millisecond))
}

func TestOrderHistory(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{SnapshotEvery: 3})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "h", "c", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := svc.AddOrderItem(ctx, "h", item(fmt.Sprintf("s%d", i), 1, 10), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct recordedAt per event
	}
	all, err := svc.OrderHistory(ctx, "h", nil, nil)
	if err != nil || len(all) != 8 {
		t.Fatalf("got %d revisions, err %v", len(all), err)
	}
	for i, r := range all {
		want, err := svc.Order(ctx, "h", eventstore.AtVersion(int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Version != int64(i+1) || r.Event.Version != r.Version || mustJSON(t, r.Order) != mustJSON(t, want) ||
			!r.RecordedAt.Equal(r.Order.UpdatedAt) {
			t.Fatalf("revision %d: %+v, want order %+v", i, r, want)
		}
	}
	tests := []struct {
		name     string
		from, to *time.Time
		want     []int64
	}{
		{"from", &all[3].RecordedAt, nil, []int64{4, 5, 6, 7, 8}},
		{"to", nil, &all[2].RecordedAt, []int64{1, 2, 3}},
		{"between", &all[1].RecordedAt, &all[4].RecordedAt, []int64{2, 3, 4, 5}},
		{"exactly one", &all[6].RecordedAt, &all[6].RecordedAt, []int64{7}},
		{"after the last", ptr(all[7].RecordedAt.Add(time.Nanosecond)), nil, nil},
		{"before the first", nil, ptr(all[0].RecordedAt.Add(-time.Nanosecond)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			revs, err := svc.OrderHistory(ctx, "h", tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range revs {
				got = append(got, r.Version)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got versions %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := svc.OrderHistory(ctx, "unknown", nil, nil); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	if _, err := svc.OrderHistory(ctx, "h", &all[4].RecordedAt, &all[1].RecordedAt); errKind(err) != "BAD_USER_INPUT" {
		t.Fatalf("from after to: %v", err)
	}
}

func TestSubscribeOrderDeliversEventsWithState(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "sub", "c", []projections.OrderItem{item("A", 1, 100)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PlaceOrder(ctx, "sub", nil); err != nil {
		t.Fatal(err)
	}
	fromStart, err := svc.SubscribeOrder(ctx, "sub", ptr(int64(0)))
	if err != nil {
		t.Fatal(err)
	}
	defer fromStart.Close()
	live, err := svc.SubscribeOrder(ctx, "sub", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ahead, err := svc.SubscribeOrder(ctx, "sub", ptr(int64(3)))
	if err != nil {
		t.Fatal(err)
	}
	defer ahead.Close()
	if _, err := svc.PayOrder(ctx, "sub", 100, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ShipOrder(ctx, "sub", "T", nil); err != nil {
		t.Fatal(err)
	}
	recv := func(sub projections.OrderSubscription, n int) string {
		var out []string
		for range n {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r, err := sub.Recv(rctx)
			cancel()
			if err != nil {
				t.Fatalf("recv: %v", err)
			}
			out = append(out, fmt.Sprintf("%d:%s:%s", r.Version, r.Event.Type, r.Order.Status))
		}
		return strings.Join(out, " ")
	}
	if got, want := recv(fromStart, 4), "1:OrderCreated:DRAFT 2:OrderPlaced:PLACED 3:OrderPaid:PAID 4:OrderShipped:SHIPPED"; got != want {
		t.Errorf("from the start: %s, want %s", got, want)
	}
	if got, want := recv(live, 2), "3:OrderPaid:PAID 4:OrderShipped:SHIPPED"; got != want {
		t.Errorf("live: %s, want %s", got, want)
	}
	if got, want := recv(ahead, 1), "4:OrderShipped:SHIPPED"; got != want {
		t.Errorf("after version 3: %s, want %s", got, want)
	}
	// Nothing more arrives.
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if r, err := fromStart.Recv(rctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("extra delivery %+v, %v", r, err)
	}
	fromStart.Close()
	if _, err := fromStart.Recv(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// refMerge is RFC 7386 written again for the test.
func refMerge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	out := map[string]any{}
	if t, ok := target.(map[string]any); ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = refMerge(out[k], v)
		}
	}
	return out
}

func TestStreamStateAcrossSnapshots(t *testing.T) {
	store, _, _ := openStore(t)
	const k = 10
	svc := openService(t, store, projections.Options{SnapshotEvery: k})
	ctx := ctxT(t)
	const stream = "cart-1"
	var events []eventstore.NewEvent
	for i := 1; i <= 95; i++ {
		patch := map[string]any{fmt.Sprintf("k%d", i%7): i, "last": i}
		if i%5 == 0 {
			patch[fmt.Sprintf("k%d", (i+3)%7)] = nil
		}
		if i%11 == 0 {
			patch["nested"] = map[string]any{"n": i, "gone": nil}
		}
		events = append(events, eventstore.NewEvent{Type: "CartChanged", Data: []byte(mustJSON(t, patch))})
	}
	if _, err := store.Append(ctx, stream, eventstore.NoStream{}, events[:50]...); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, stream, eventstore.Exact(50), events[50:]...); err != nil {
		t.Fatal(err)
	}
	// The first read folds everything and offers snapshots at 10, 20, ... 90.
	if _, v, err := svc.StreamState(ctx, stream, eventstore.Now()); err != nil || v != 95 {
		t.Fatalf("now: version %d, %v", v, err)
	}
	waitFor(t, "merge snapshots", func() bool {
		for v := int64(k); v <= 90; v += k {
			if !hasSnapshot(store, stream, "merge", 1, v) {
				return false
			}
		}
		return true
	})
	stored, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want any
	for v := int64(0); v <= 96; v++ {
		if v > 0 && v <= 95 {
			var patch any
			if err := json.Unmarshal(stored[v-1].Data, &patch); err != nil {
				t.Fatal(err)
			}
			want = refMerge(want, patch)
		}
		before := svc.Stats()
		got, gotV, err := svc.StreamState(ctx, stream, eventstore.AtVersion(v))
		if err != nil {
			t.Fatal(err)
		}
		folded := svc.Stats().EventsFolded - before.EventsFolded
		if folded >= k {
			t.Errorf("version %d folded %d events; at most %d expected", v, folded, k-1)
		}
		switch {
		case v == 0:
			if got != nil || gotV != 0 {
				t.Fatalf("version 0: %s %d, want nil 0", got, gotV)
			}
		default:
			var gotAny any
			if err := json.Unmarshal(got, &gotAny); err != nil {
				t.Fatal(err)
			}
			if mustJSON(t, gotAny) != mustJSON(t, want) || gotV != min(v, 95) {
				t.Fatalf("version %d: got %s (v%d), want %s", v, got, gotV, mustJSON(t, want))
			}
		}
	}
	for _, tc := range []struct {
		name   string
		stream string
		at     eventstore.At
	}{
		{"missing stream", "cart-none", eventstore.Now()},
		{"before the first event", stream, eventstore.AtTime(stored[0].RecordedAt.Add(-time.Nanosecond))},
		{"position before the first event", stream, eventstore.AtPosition(stored[0].Position - 1)},
	} {
		if got, v, err := svc.StreamState(ctx, tc.stream, tc.at); got != nil || v != 0 || err != nil {
			t.Errorf("%s: %s %d %v, want nil 0 nil", tc.name, got, v, err)
		}
	}
	if _, _, err := svc.StreamState(ctx, "$bad", eventstore.Now()); errKind(err) != "BAD_USER_INPUT" {
		t.Errorf("bad stream id: %v", err)
	}
}

// upperOrder is the order projection after a code change: it stores the
// customer in upper case. Its schema version is bumped, as a change to Apply
// requires.
type upperOrder struct{ projections.OrderProjection }

func (upperOrder) SchemaVersion() int { return projections.OrderSchemaVersion + 1 }

func (p upperOrder) Apply(o projections.Order, e eventstore.Event) projections.Order {
	o = p.OrderProjection.Apply(o, e)
	if e.Type == projections.EventOrderCreated {
		o.CustomerID = strings.ToUpper(o.CustomerID)
	}
	return o
}

func TestSchemaBumpIgnoresStaleSnapshots(t *testing.T) {
	store, _, _ := openStore(t)
	ctx := ctxT(t)
	v1 := openService(t, store, projections.Options{})
	if _, err := v1.CreateOrder(ctx, "big", "alice", nil); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 250; i++ {
		var err error
		if i%2 == 0 {
			_, err = v1.AddOrderItem(ctx, "big", item("A", 1, 1), nil)
		} else {
			_, err = v1.RemoveOrderItem(ctx, "big", "A", nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "schema 1 snapshots", func() bool {
		return hasSnapshot(store, "order-big", "order", 1, 100) && hasSnapshot(store, "order-big", "order", 1, 200)
	})
	// (Version 249: the current state, 250, is cached and would be used.)
	before := v1.Stats()
	o, err := v1.Order(ctx, "big", eventstore.AtVersion(249))
	if err != nil || o.CustomerID != "alice" {
		t.Fatalf("v1: %+v %v", o, err)
	}
	if st := v1.Stats(); st.SnapshotsUsed-before.SnapshotsUsed != 1 || st.EventsFolded-before.EventsFolded != 49 {
		t.Fatalf("v1 read used %d snapshots and folded %d events, want 1 and 49",
			st.SnapshotsUsed-before.SnapshotsUsed, st.EventsFolded-before.EventsFolded)
	}

	// A service with the changed projection never reads schema 1 snapshots:
	// a stale snapshot at 200 plus 50 events would keep "alice".
	reg := projections.NewRegistry()
	if err := projections.Register[projections.Order](reg, upperOrder{}); err != nil {
		t.Fatal(err)
	}
	if err := projections.Register[any](reg, projections.MergeProjection{}); err != nil {
		t.Fatal(err)
	}
	v2 := openService(t, store, projections.Options{Registry: reg})
	for _, v := range []int64{99, 100, 150, 200, 250} {
		o, err := v2.Order(ctx, "big", eventstore.AtVersion(v))
		if err != nil || o.CustomerID != "ALICE" || o.Version != v {
			t.Fatalf("v2 at %d: customer %q version %d, %v", v, o.CustomerID, o.Version, err)
		}
	}
	page, err := v2.Orders(ctx, projections.ListOrders{First: 10})
	if err != nil || len(page.Orders) != 1 || page.Orders[0].CustomerID != "ALICE" {
		t.Fatalf("v2 read model: %+v %v", page, err)
	}
	// v2's projector writes its own snapshots, which v2 then uses.
	waitFor(t, "schema 2 snapshots", func() bool {
		return hasSnapshot(store, "order-big", "order", 2, 100) && hasSnapshot(store, "order-big", "order", 2, 200)
	})
	before = v2.Stats()
	if o, err := v2.Order(ctx, "big", eventstore.AtVersion(250)); err != nil || o.CustomerID != "ALICE" {
		t.Fatalf("v2 from its snapshot: %+v %v", o, err)
	}
	if st := v2.Stats(); st.SnapshotsUsed-before.SnapshotsUsed != 1 || st.EventsFolded-before.EventsFolded != 50 {
		t.Fatalf("v2 read used %d snapshots and folded %d events, want 1 and 50",
			st.SnapshotsUsed-before.SnapshotsUsed, st.EventsFolded-before.EventsFolded)
	}
	// And v1 still reads its own.
	if o, err := v1.Order(ctx, "big", eventstore.AtVersion(250)); err != nil || o.CustomerID != "alice" {
		t.Fatalf("v1 after v2: %+v %v", o, err)
	}
}

func TestRebuildGivesTheSameAnswers(t *testing.T) {
	store, client, db := openStore(t)
	ctx := ctxT(t)
	checkpoints := mongocheckpoint.New(client.Database(db))
	first, err := projections.New(store, projections.Options{Logger: quietLog, Checkpoints: checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	playLifecycles(t, first, 30)
	head := store.HeadPosition()
	type answer struct{ orders, stats string }
	answers := func(svc *projections.Service) []answer {
		var out []answer
		for p := int64(0); p <= head; p += 7 {
			page, err := svc.Orders(ctx, projections.ListOrders{At: eventstore.AtPosition(p), First: 1000})
			if err != nil {
				t.Fatal(err)
			}
			st, err := svc.OrderStats(ctx, eventstore.AtPosition(p))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, answer{mustJSON(t, page), mustJSON(t, st)})
		}
		// Now waits for the read model to reach the head.
		page, err := svc.Orders(ctx, projections.ListOrders{First: 1000})
		if err != nil || page.TotalCount != 30 {
			t.Fatalf("now: %d orders, %v", page.TotalCount, err)
		}
		return out
	}
	want := answers(first)
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoints.LoadCheckpoint(ctx, projections.ReadModelProjector)
	if err != nil || cp.Position != head || cp.SchemaVersion != projections.OrderSchemaVersion {
		t.Fatalf("stored checkpoint %+v, %v; want position %d", cp, err, head)
	}

	// A new service on the same store: its read model starts empty.
	second := openService(t, store, projections.Options{Checkpoints: checkpoints})
	if got := answers(second); mustJSON(t, got) != mustJSON(t, want) {
		t.Fatal("a rebuilt read model answers differently")
	}
	// A restarted process: a new store on the same database, a new service.
	restarted := openStoreOn(t, client, db)
	third := openService(t, restarted, projections.Options{})
	if got := answers(third); mustJSON(t, got) != mustJSON(t, want) {
		t.Fatal("the read model of a restarted process answers differently")
	}
}

// playLifecycles creates n orders and takes them through mixed lifecycles.
func playLifecycles(t *testing.T, svc *projections.Service, n int) {
	ctx := ctxT(t)
	for i := range n {
		id := fmt.Sprintf("life-%d", i)
		must := func(_ projections.Order, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(svc.CreateOrder(ctx, id, fmt.Sprintf("cust-%d", i%4), []projections.OrderItem{item("A", int64(i%3+1), 250)}))
		if i%5 == 0 {
			continue
		}
		must(svc.AddOrderItem(ctx, id, item("B", 1, int64(100*i)), nil))
		must(svc.PlaceOrder(ctx, id, nil))
		if i%5 == 1 {
			must(svc.CancelOrder(ctx, id, "changed mind", nil))
			continue
		}
		o, err := svc.Order(ctx, id, eventstore.Now())
		must(o, err)
		must(svc.PayOrder(ctx, id, o.TotalCents, nil))
		if i%5 >= 3 {
			must(svc.ShipOrder(ctx, id, "T-"+id, nil))
		}
	}
}

func TestListsAndStatsValidateTheirInput(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{LagWait: 200 * time.Millisecond})
	ctx := ctxT(t)
	if _, err := svc.CreateOrder(ctx, "x", "c", nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	far := store.HeadPosition() + 1000
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"first 0", func() error { _, err := svc.Orders(ctx, projections.ListOrders{First: 0}); return err }(), "BAD_USER_INPUT"},
		{"first 1001", func() error { _, err := svc.Orders(ctx, projections.ListOrders{First: 1001}); return err }(), "BAD_USER_INPUT"},
		{"first 1000", func() error { _, err := svc.Orders(ctx, projections.ListOrders{First: 1000}); return err }(), "ok"},
		{"bad cursor", func() error { _, err := svc.Orders(ctx, projections.ListOrders{First: 1, After: "nope"}); return err }(), "BAD_USER_INPUT"},
		{"bad status", func() error {
			_, err := svc.Orders(ctx, projections.ListOrders{First: 1, Status: ptr(projections.OrderStatus("LOST"))})
			return err
		}(), "BAD_USER_INPUT"},
		{"version on a list", func() error {
			_, err := svc.Orders(ctx, projections.ListOrders{First: 1, At: eventstore.AtVersion(1)})
			return err
		}(), "BAD_USER_INPUT"},
		{"negative position", func() error { _, err := svc.OrderStats(ctx, eventstore.AtPosition(-1)); return err }(), "BAD_USER_INPUT"},
		{"future position lags", func() error { _, err := svc.OrderStats(ctx, eventstore.AtPosition(far)); return err }(), "PROJECTION_LAGGING"},
		{"future position of an order lags", func() error { _, err := svc.Order(ctx, "x", eventstore.AtPosition(far)); return err }(), "PROJECTION_LAGGING"},
		{"series step too small", func() error { _, err := svc.OrderStatsSeries(ctx, now, now, time.Second-1); return err }(), "BAD_USER_INPUT"},
		{"series backwards", func() error { _, err := svc.OrderStatsSeries(ctx, now, now.Add(-time.Second), time.Second); return err }(), "BAD_USER_INPUT"},
		{"series of 1001 points", func() error {
			_, err := svc.OrderStatsSeries(ctx, now, now.Add(1000*time.Second), time.Second)
			return err
		}(), "BAD_USER_INPUT"},
		{"series of 1000 points", func() error {
			_, err := svc.OrderStatsSeries(ctx, now, now.Add(999*time.Second), time.Second)
			return err
		}(), "ok"},
	}
	for _, tc := range tests {
		if got := errKind(tc.err); got != tc.want {
			t.Errorf("%s: got %s (%v), want %s", tc.name, got, tc.err, tc.want)
		}
	}
}

func TestOrdersPages(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	playLifecycles(t, svc, 23)
	for _, tc := range []struct {
		name   string
		q      projections.ListOrders
		expect int
	}{
		{"all", projections.ListOrders{}, 23},
		{"paid", projections.ListOrders{Status: ptr(projections.StatusPaid)}, 5},
		{"customer", projections.ListOrders{CustomerID: "cust-1"}, 6},
		{"shipped of a customer", projections.ListOrders{Status: ptr(projections.StatusShipped), CustomerID: "cust-3"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			after := ""
			for pages := 0; ; pages++ {
				q := tc.q
				q.First, q.After = 4, after
				page, err := svc.Orders(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if page.TotalCount != tc.expect {
					t.Fatalf("total %d, want %d", page.TotalCount, tc.expect)
				}
				for i, o := range page.Orders {
					ids = append(ids, o.ID)
					if page.Cursors[i] == "" {
						t.Fatal("empty cursor")
					}
				}
				if !page.HasNext {
					break
				}
				if len(page.Orders) != 4 || page.EndCursor != page.Cursors[3] {
					t.Fatalf("a page with a next page holds %d orders", len(page.Orders))
				}
				after = page.EndCursor
			}
			if len(ids) != tc.expect {
				t.Fatalf("paged through %d orders, want %d: %v", len(ids), tc.expect, ids)
			}
			// Creation order: life-0, life-1, ...
			for i := 1; i < len(ids); i++ {
				var a, b int
				fmt.Sscanf(ids[i-1], "life-%d", &a)
				fmt.Sscanf(ids[i], "life-%d", &b)
				if a >= b {
					t.Fatalf("not in creation order: %v", ids)
				}
			}
		})
	}
}

// Two instances on one database: each sees the other's writes at the
// positions they returned, and commands work on state the other changed
// (the cache is checked against the stream's head, never trusted blindly).
func TestTwoInstancesStayCoherent(t *testing.T) {
	storeA, client, db := openStore(t)
	storeB := openStoreOn(t, client, db)
	a := openService(t, storeA, projections.Options{})
	b := openService(t, storeB, projections.Options{})
	ctx := ctxT(t)

	// B has not seen the create when it gets the command: it waits briefly
	// for the log rather than answer NOT_FOUND.
	if _, err := a.CreateOrder(ctx, "shared", "c", []projections.OrderItem{item("A", 1, 100)}); err != nil {
		t.Fatal(err)
	}
	added, err := b.AddOrderItem(ctx, "shared", item("B", 1, 50), nil)
	if err != nil || added.Version != 2 {
		t.Fatalf("B adding to A's new order: %+v %v", added, err)
	}
	// A caches the order at version 2 ...
	if o, err := a.Order(ctx, "shared", eventstore.AtPosition(added.Position)); err != nil || o.Version != 2 {
		t.Fatalf("A at B's position: %+v %v", o, err)
	}
	if o, err := a.Order(ctx, "shared", eventstore.Now()); err != nil || o.Version != 2 {
		t.Fatalf("A now: %+v %v", o, err)
	}
	// ... B places it, told A's version ...
	placed, err := b.PlaceOrder(ctx, "shared", ptr(added.Version))
	if err != nil || placed.Version != 3 || placed.TotalCents != 150 {
		t.Fatalf("B placing: %+v %v", placed, err)
	}
	// ... and once A has seen that position, its cached version 2 is not
	// used as the current state: the payment is decided on PLACED.
	if _, err := a.Order(ctx, "shared", eventstore.AtPosition(placed.Position)); err != nil {
		t.Fatal(err)
	}
	paid, err := a.PayOrder(ctx, "shared", 150, nil)
	if err != nil || paid.Version != 4 || paid.Status != projections.StatusPaid {
		t.Fatalf("A paying after B placed: %+v %v", paid, err)
	}
	// B, told A's version, waits for it rather than report a conflict.
	shipped, err := b.ShipOrder(ctx, "shared", "T", ptr(paid.Version))
	if err != nil || shipped.Version != 5 {
		t.Fatalf("B shipping at A's version: %+v %v", shipped, err)
	}
	for name, svc := range map[string]*projections.Service{"A": a, "B": b} {
		st, err := svc.OrderStats(ctx, eventstore.AtPosition(shipped.Position))
		if err != nil || st.RevenueCents != 150 || st.CountByStatus[3].Count != 1 {
			t.Fatalf("%s stats at %d: %+v %v", name, shipped.Position, st, err)
		}
	}
}

// TestNewRefusesBadSetup: New fails at construction, before anything runs,
// on every setup it cannot work with.
func TestNewRefusesBadSetup(t *testing.T) {
	store, _, _ := openStore(t)
	cases := []struct {
		name  string
		store *eventstore.Store
		opts  projections.Options
		want  string
	}{
		{"nil store", nil, projections.Options{}, "nil store"},
		{"negative SnapshotEvery", store, projections.Options{SnapshotEvery: -1}, "SnapshotEvery must not be negative"},
		{"negative CacheSize", store, projections.Options{CacheSize: -1}, "CacheSize must not be negative"},
		{"registry without the order projection", store, projections.Options{Registry: projections.NewRegistry()}, projections.OrderProjectionName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc, err := projections.New(c.store, c.opts)
			if err == nil || svc != nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, %v; want no service and an error naming %q", svc, err, c.want)
			}
		})
	}
}
