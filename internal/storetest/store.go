package storetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Store opens an event store on the database, waits until its memory image
// is built, and closes it when the test ends. Its logs are discarded unless
// opts set a logger.
func Store(tb testing.TB, client *mongo.Client, db string, opts ...eventstore.Option) *eventstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := eventstore.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := eventstore.Open(ctx, client, db, append([]eventstore.Option{quiet}, opts...)...)
	if err != nil {
		tb.Fatalf("storetest: open event store: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	if err := s.WaitReady(ctx); err != nil {
		tb.Fatalf("storetest: event store not ready: %v", err)
	}
	return s
}
