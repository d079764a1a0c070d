package projections_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

// Examples have no testing.T, so they start their own embedded store (or use
// HINDSIGHT_MONGODB_URI) rather than storetest's.
var example struct {
	once sync.Once
	srv  *embedded.Server
	dir  string
	err  error
}

func stopExampleStore() {
	if example.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = example.srv.Close(ctx)
		_ = os.RemoveAll(example.dir)
	}
}

// exampleService opens a store on a fresh database and a service on it. The
// returned func closes everything.
func exampleService() (*eventstore.Store, *projections.Service, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uri := os.Getenv(storetest.EnvURI)
	if uri == "" {
		example.once.Do(func() {
			if example.dir, example.err = os.MkdirTemp("", "hindsight-example-"); example.err != nil {
				return
			}
			example.srv, example.err = embedded.Start(ctx, embedded.Config{Dir: example.dir, Logger: quietLog})
		})
		if example.err != nil {
			panic(example.err)
		}
		uri = example.srv.URI()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		panic(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	db := "example_" + hex.EncodeToString(b)
	store, err := eventstore.Open(ctx, client, db, eventstore.WithLogger(quietLog))
	if err != nil {
		panic(err)
	}
	if err := store.WaitReady(ctx); err != nil {
		panic(err)
	}
	svc, err := projections.New(store, projections.Options{Logger: quietLog})
	if err != nil {
		panic(err)
	}
	if err := svc.Open(ctx); err != nil {
		panic(err)
	}
	return store, svc, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = svc.Close(ctx)
		_ = store.Close(ctx)
		_ = client.Database(db).Drop(ctx)
		_ = client.Disconnect(ctx)
	}
}

func ExampleService_CreateOrder() {
	_, svc, done := exampleService()
	defer done()
	ctx := context.Background()

	// An order id makes the create idempotent; without one a UUIDv7 is made.
	o, err := svc.CreateOrder(ctx, "42", "customer-7", []projections.OrderItem{
		{SKU: "book", Quantity: 2, UnitPriceCents: 1250},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(o.ID, o.Status, o.TotalCents, o.Version)

	// Commands without an expected version retry on conflicts by themselves.
	o, _ = svc.AddOrderItem(ctx, "42", projections.OrderItem{SKU: "pen", Quantity: 1, UnitPriceCents: 199}, nil)
	o, _ = svc.PlaceOrder(ctx, "42", nil)
	fmt.Println(o.Status, o.TotalCents, o.Version)

	// Rule violations are *RuleError, errors.Is(err, ErrInvalidState).
	_, err = svc.PayOrder(ctx, "42", 100, nil)
	fmt.Println(err)
	// Output:
	// 42 DRAFT 2500 1
	// PLACED 2699 3
	// payment of 100 cents does not match the total of order 42, 2699 cents
}

func ExampleService_Order() {
	_, svc, done := exampleService()
	defer done()
	ctx := context.Background()

	svc.CreateOrder(ctx, "7", "c", []projections.OrderItem{{SKU: "tea", Quantity: 1, UnitPriceCents: 400}})
	svc.PlaceOrder(ctx, "7", nil)
	paid, _ := svc.PayOrder(ctx, "7", 400, nil)
	svc.ShipOrder(ctx, "7", "1Z999", nil)

	// The order as it is, at a version, at a position, at a time.
	now, _ := svc.Order(ctx, "7", eventstore.Now())
	v1, _ := svc.Order(ctx, "7", eventstore.AtVersion(1))
	atPos, _ := svc.Order(ctx, "7", eventstore.AtPosition(paid.Position))
	atPaid, _ := svc.Order(ctx, "7", eventstore.AtTime(*paid.PaidAt))
	fmt.Println(now.Status, v1.Status, atPos.Status, atPaid.Status)
	// Output: SHIPPED DRAFT PAID PAID
}

func ExampleService_OrderStats() {
	_, svc, done := exampleService()
	defer done()
	ctx := context.Background()

	for i, total := range []int64{300, 500, 700} {
		id := fmt.Sprint("o", i)
		svc.CreateOrder(ctx, id, "c", []projections.OrderItem{{SKU: "x", Quantity: 1, UnitPriceCents: total}})
		svc.PlaceOrder(ctx, id, nil)
		if i > 0 {
			svc.PayOrder(ctx, id, total, nil)
		}
	}
	before, _ := svc.OrderStats(ctx, eventstore.Now())
	svc.CancelOrder(ctx, "o2", "out of stock", nil)
	after, _ := svc.OrderStats(ctx, eventstore.Now())
	// The past does not change: stats at the earlier position still count o2.
	then, _ := svc.OrderStats(ctx, eventstore.AtPosition(before.Position))
	for _, st := range []projections.OrderStats{before, after, then} {
		fmt.Println(st.CountByStatus, st.RevenueCents)
	}
	// Output:
	// [{DRAFT 0} {PLACED 1} {PAID 2} {SHIPPED 0} {CANCELLED 0}] 1200
	// [{DRAFT 0} {PLACED 1} {PAID 1} {SHIPPED 0} {CANCELLED 1}] 500
	// [{DRAFT 0} {PLACED 1} {PAID 2} {SHIPPED 0} {CANCELLED 0}] 1200
}

func ExampleService_Orders() {
	_, svc, done := exampleService()
	defer done()
	ctx := context.Background()

	for i := range 5 {
		svc.CreateOrder(ctx, fmt.Sprint("order", i), fmt.Sprint("customer", i%2), nil)
	}
	// Page through customer0's orders, two at a time.
	q := projections.ListOrders{CustomerID: "customer0", First: 2}
	for {
		page, err := svc.Orders(ctx, q)
		if err != nil {
			panic(err)
		}
		for _, o := range page.Orders {
			fmt.Print(o.ID, " ")
		}
		fmt.Println("of", page.TotalCount)
		if !page.HasNext {
			break
		}
		q.After = page.EndCursor
	}
	// Output:
	// order0 order2 of 3
	// order4 of 3
}

func ExampleService_StreamState() {
	store, svc, done := exampleService()
	defer done()
	ctx := context.Background()

	// Any stream's events fold as JSON merge patches (RFC 7386).
	store.Append(ctx, "profile-1", eventstore.NoStream{},
		eventstore.NewEvent{Type: "Set", Data: json.RawMessage(`{"name":"Ada","langs":{"en":true}}`)},
		eventstore.NewEvent{Type: "Set", Data: json.RawMessage(`{"langs":{"fr":true,"en":null}}`)},
	)
	state, version, _ := svc.StreamState(ctx, "profile-1", eventstore.Now())
	fmt.Println(string(state), version)
	state, version, _ = svc.StreamState(ctx, "profile-1", eventstore.AtVersion(1))
	fmt.Println(string(state), version)
	// Output:
	// {"langs":{"fr":true},"name":"Ada"} 2
	// {"langs":{"en":true},"name":"Ada"} 1
}

func ExampleRegister() {
	// Registration is explicit. A projection whose Apply changes gets a new
	// schema version, so its old snapshots are never used again.
	reg := projections.NewRegistry()
	if err := projections.Register[any](reg, projections.MergeProjection{}); err != nil {
		panic(err)
	}
	if err := projections.Register[projections.Order](reg, projections.OrderProjection{}); err != nil {
		panic(err)
	}
	fmt.Println(reg.Names())
	p, _ := projections.Lookup[projections.Order](reg, projections.OrderProjectionName)
	o := p.Apply(p.Initial(), eventstore.Event{StreamID: "order-1", Version: 1, Type: projections.EventOrderCreated,
		Data:       json.RawMessage(`{"customerId":"c","items":[{"sku":"a","quantity":3,"unitPriceCents":5}]}`),
		RecordedAt: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)})
	fmt.Println(o.ID, o.Status, o.TotalCents, o.CreatedAt.Format(time.DateOnly))
	// Output:
	// [merge order]
	// 1 DRAFT 15 2024-01-01
}
