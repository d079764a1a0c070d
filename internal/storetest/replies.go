package storetest

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Replies measures the store's replies to reads (find and getMore) on a
// client made by [MeteredClient]. MongoDB caps a reply at 16 MiB whatever the
// batch size, FerretDB does not: tests use it to prove that every read is
// bounded by bytes by the reader, not by the store.
type Replies struct {
	mu      sync.Mutex
	max     int
	command string
	count   int
}

// Max returns the size in bytes of the largest reply seen, the command that
// got it, and how many replies were seen.
func (r *Replies) Max() (bytes int, command string, count int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max, r.command, r.count
}

// Reset forgets the replies seen so far.
func (r *Replies) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max, r.command, r.count = 0, "", 0
}

// MeteredClient returns a client of the store used by [Client] whose
// replies to find and getMore are measured, disconnected when the test
// ends. Use it with the database of a [Client] call to reopen what another
// client wrote.
func MeteredClient(tb testing.TB) (*mongo.Client, *Replies) {
	tb.Helper()
	r := &Replies{}
	mon := &event.CommandMonitor{Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
		if e.CommandName != "find" && e.CommandName != "getMore" {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.count++
		if len(e.Reply) > r.max {
			r.max, r.command = len(e.Reply), e.CommandName
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(URI(tb)).SetMonitor(mon))
	if err != nil {
		tb.Fatalf("storetest: connect: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client, r
}
