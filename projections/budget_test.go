package projections_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

// TestOrderAtOldVersionUnderMemoryBudget: with a memory budget far smaller
// than the log, the order histories are evicted, and time travel reads them
// back from the store: every order at every point equals the answer of a
// store without a budget.
func TestOrderAtOldVersionUnderMemoryBudget(t *testing.T) {
	ctx := ctxT(t)
	client, db := storetest.Client(t)
	small := storetest.Store(t, client, db, eventstore.WithLogger(quietLog), eventstore.WithMemoryBudget(96<<10))
	svc := openService(t, small, projections.Options{SnapshotEvery: 10})

	const orders, adds = 12, 20
	id := func(i int) string { return fmt.Sprintf("budget-%d", i) }
	for i := 0; i < orders; i++ {
		if _, err := svc.CreateOrder(ctx, id(i), fmt.Sprintf("c-%d", i), []projections.OrderItem{item("A", 1, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	for step := 0; step < adds; step++ {
		for i := 0; i < orders; i++ {
			if _, err := svc.AddOrderItem(ctx, id(i), item(fmt.Sprintf("S%d", step%7), 1, 100), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < orders; i++ {
		if _, err := svc.PlaceOrder(ctx, id(i), nil); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := svc.PayOrder(ctx, id(i), 100*(adds+1), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Other streams push the orders out of the image.
	for i := 0; i < 60; i++ {
		if _, err := small.Append(ctx, fmt.Sprintf("filler-%d", i%6), eventstore.Any{},
			eventstore.NewEvent{Type: "Filler", Data: []byte(`{"pad":"` + strings.Repeat("x", 3000) + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	st := small.Stats()
	if st.Evictions == 0 || st.ResidentEvents >= st.LogEvents || st.ResidentBytes > 96<<10 {
		t.Fatalf("the budget did not evict: %+v", st)
	}

	ref := openStoreOn(t, client, db) // no budget
	refSvc := openService(t, ref, projections.Options{SnapshotEvery: 10})
	head := ref.HeadPosition()
	before := small.Stats().Misses
	for _, i := range []int{0, 5, 11} {
		for _, at := range []eventstore.At{eventstore.AtVersion(1), eventstore.AtVersion(7), eventstore.AtVersion(10),
			eventstore.AtVersion(13), eventstore.AtVersion(21), eventstore.AtVersion(adds + 2), eventstore.AtPosition(head / 3),
			eventstore.Now()} {
			got, err := svc.Order(ctx, id(i), at)
			if err != nil {
				t.Fatalf("order %s at %+v: %v", id(i), at, err)
			}
			want, err := refSvc.Order(ctx, id(i), at)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
				t.Fatalf("order %s at %+v:\n got %s\nwant %s", id(i), at, g, w)
			}
		}
		got, err := svc.OrderHistory(ctx, id(i), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := refSvc.OrderHistory(ctx, id(i), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Fatalf("history of %s:\n got %s\nwant %s", id(i), g, w)
		}
	}
	if small.Stats().Misses == before {
		t.Fatalf("no read missed: the test read nothing evicted")
	}
}
