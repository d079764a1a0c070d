package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopExampleStore()
	storetest.Shutdown()
	os.Exit(code)
}

var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens an event store on a fresh database.
func openStore(t testing.TB) (*eventstore.Store, *mongo.Client, string) {
	t.Helper()
	client, db := storetest.Client(t)
	return openStoreOn(t, client, db), client, db
}

func openStoreOn(t testing.TB, client *mongo.Client, db string) *eventstore.Store {
	t.Helper()
	return storetest.Store(t, client, db, eventstore.WithLogger(quietLog))
}

// openService opens a projections service and waits until its read model
// has caught up.
func openService(t testing.TB, store *eventstore.Store, opts projections.Options) *projections.Service {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLog
	}
	svc, err := projections.New(store, opts)
	if err != nil {
		t.Fatalf("open service: %v", err)
	}
	ctx := ctxT(t)
	if err := svc.Open(ctx); err != nil {
		t.Fatalf("open service: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close service: %v", err)
		}
	})
	waitFor(t, "read model ready", func() bool { return svc.Ready() })
	return svc
}

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func item(sku string, q, p int64) projections.OrderItem {
	return projections.OrderItem{SKU: sku, Quantity: q, UnitPriceCents: p}
}

// errKind names the class of an error the way the GraphQL layer maps it.
func errKind(err error) string {
	var wev *eventstore.WrongExpectedVersionError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &wev):
		return "WRONG_EXPECTED_VERSION"
	case errors.Is(err, projections.ErrInvalidInput):
		return "BAD_USER_INPUT"
	case errors.Is(err, projections.ErrInvalidState):
		return "INVALID_STATE"
	case errors.Is(err, projections.ErrNotFound):
		return "NOT_FOUND"
	case errors.Is(err, projections.ErrProjectionLagging):
		return "PROJECTION_LAGGING"
	}
	return "other: " + err.Error()
}

// hasSnapshot reports whether a snapshot of the projection exists at exactly
// the version.
func hasSnapshot(store *eventstore.Store, stream, projection string, schema int, version int64) bool {
	sn, err := store.LoadSnapshot(context.Background(), eventstore.SnapshotQuery{StreamID: stream,
		Projection: projection, SchemaVersion: schema, At: eventstore.AtVersion(version)})
	return err == nil && sn.Version == version
}
