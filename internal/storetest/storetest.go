// Package storetest gives tests a MongoDB-compatible store and a fresh
// database on it.
//
// If HINDSIGHT_MONGODB_URI is set, tests use that store (a real MongoDB, or
// FerretDB on PostgreSQL). Otherwise the first call in a test binary starts one
// embedded FerretDB (SQLite, in a temporary directory; see package embedded),
// which every later test of the same binary shares. Each [Client] call gets its
// own database, dropped when the test ends, so tests can run in parallel.
//
// Packages that want the temporary directory removed call [Shutdown] from
// TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		storetest.Shutdown()
//		os.Exit(code)
//	}
//
// Without it the embedded store simply lives until the test binary exits,
// leaving its temporary directory behind.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
)

// EnvURI names the environment variable that points tests at an external
// store instead of the shared embedded one.
const EnvURI = "HINDSIGHT_MONGODB_URI"

// timeout bounds starting the store, connecting, and cleaning up.
const timeout = 60 * time.Second

// The shared embedded store of this test binary. A mutex rather than a
// sync.Once, so that a store can be started again after Shutdown.
var (
	mu        sync.Mutex
	shared    *embedded.Server
	sharedDir string
)

// URI returns the URI of the store used by [Client], starting the shared
// embedded store if needed. It is useful for tests that spawn child processes
// pointing at the same store.
func URI(tb testing.TB) string {
	tb.Helper()

	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}

	uri, err := sharedURI()
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}

	return uri
}

// Client returns a connected client and a fresh, unique database name
// ("t_" and 12 hex digits). When the test ends the database is dropped and
// the client disconnected.
func Client(tb testing.TB) (*mongo.Client, string) {
	tb.Helper()

	uri := URI(tb)

	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		tb.Fatalf("storetest: connect to %s: %v", uri, err)
	}

	dbName := "t_" + randomHex(6)

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()

		if err := client.Database(dbName).Drop(ctx); err != nil {
			tb.Errorf("storetest: drop database %s: %v", dbName, err)
		}

		if err := client.Disconnect(ctx); err != nil {
			tb.Errorf("storetest: disconnect: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if err = client.Ping(ctx, nil); err != nil {
		tb.Fatalf("storetest: ping %s: %v", uri, err)
	}

	return client, dbName
}

// Shutdown stops the shared embedded store, if one was started, and removes
// its temporary directory. It is best-effort and safe to call more than once;
// call it from TestMain after m.Run().
func Shutdown() {
	mu.Lock()
	defer mu.Unlock()

	if shared == nil {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if err := shared.Close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: stop embedded store: %v\n", err)
	} else if err = os.RemoveAll(sharedDir); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: remove %s: %v\n", sharedDir, err)
	}

	shared, sharedDir = nil, ""
}

// sharedURI returns the URI of the shared embedded store, starting it if
// needed.
func sharedURI() (string, error) {
	mu.Lock()
	defer mu.Unlock()

	if shared != nil {
		return shared.URI(), nil
	}

	dir, err := os.MkdirTemp("", "hindsight-storetest-")
	if err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	s, err := embedded.Start(ctx, embedded.Config{
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("start embedded store: %w", err)
	}

	shared, sharedDir = s, dir

	return s.URI(), nil
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read

	return hex.EncodeToString(b)
}
