package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	storetest.Shutdown()
	os.Exit(code)
}

// openStore opens a store on a fresh database and waits until it is ready.
func openStore(t testing.TB, opts ...eventstore.Option) (*eventstore.Store, *mongo.Client, string) {
	t.Helper()
	client, db := storetest.Client(t)
	return openOn(t, client, db, opts...), client, db
}

func openOn(t testing.TB, client *mongo.Client, db string, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	return storetest.Store(t, client, db, opts...)
}

func ev(typ string, data any) eventstore.NewEvent {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return eventstore.NewEvent{Type: typ, Data: b}
}

func evID(id, typ string, data any) eventstore.NewEvent {
	e := ev(typ, data)
	e.ID = id
	return e
}

// ctxT is a test's context. It ends shortly before the test binary's own
// deadline (go test -timeout), so that a test that hangs fails with its
// store calls' errors instead of a panic, while a slow run (full size under
// -race on two busy cores) is never cut short by a fixed total.
func ctxT(t testing.TB) context.Context {
	deadline := time.Now().Add(time.Hour)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			deadline = dl.Add(-10 * time.Second)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// readAllEvents pages through the whole global log.
func readAllEvents(t testing.TB, s *eventstore.Store) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	var after int64
	for {
		page, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

// checkLog asserts guarantee 4 and per-stream versions on a full log.
func checkLog(t testing.TB, log []eventstore.Event) {
	t.Helper()
	versions := map[string]int64{}
	for i, e := range log {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d has position %d; want gap-free positions from 1", i, e.Position)
		}
		if i > 0 && e.RecordedAt.Before(log[i-1].RecordedAt) {
			t.Fatalf("recordedAt decreases at position %d", e.Position)
		}
		versions[e.StreamID]++
		if e.Version != versions[e.StreamID] {
			t.Fatalf("stream %s: event at position %d has version %d, want %d", e.StreamID, e.Position, e.Version, versions[e.StreamID])
		}
	}
}

func streamName(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

func runtimeGosched() { time.Sleep(time.Millisecond) }

// benchClient gives a benchmark a client and a fresh database.
func benchClient(b *testing.B) (*mongo.Client, string) { return storetest.Client(b) }
