// Package embedded runs FerretDB v1.24 inside the Hindsight process, so that
// `go run .` and `go test` work with nothing else installed.
//
// # Why it exists
//
// No mongod can be installed on the machines Hindsight is developed and tested
// on. FerretDB speaks the MongoDB wire protocol, so the rest of Hindsight talks
// to it through the official driver (go.mongodb.org/mongo-driver/v2) exactly as
// it would talk to a real MongoDB: [Start] returns a mongodb:// URI and nothing
// else in the code base needs to know the store is embedded. By default the data
// lives in SQLite files (one per database) in [Config.Dir]; setting
// [Config.PostgreSQLURL] switches to FerretDB's PostgreSQL handler, which is the
// most server-like store available here (see pgstore.sh in this directory).
//
// # Limits
//
// The embedded store is a correctness store, not a performance one. Code that
// uses it must stay correct under these FerretDB v1.24 limits:
//
//   - No transactions and no change streams. Multi-document atomicity must come
//     from single-document writes and unique indexes.
//   - findOneAndUpdate with $inc is not atomic under concurrency; never use a
//     counter document to hand out unique values. Unique indexes do hold
//     (E11000, mongo.IsDuplicateKeyError).
//   - Every filter scans. The SQLite handler pushes down only _id equality and
//     $natural sort, and in practice answers every read, even by _id, by
//     scanning the whole collection (about 40 µs per stored document). The
//     PostgreSQL handler pushes down scalar equality and a single-field sort,
//     but not $gt/$lt ranges.
//   - Single inserts run at about 1,000/s; insertMany batches are roughly an
//     order of magnitude faster.
//   - Tailable cursors on capped collections re-deliver old documents.
//
// This is why Hindsight serves reads from memory and treats the store as the
// durable log only (see ARCHITECTURE.md).
//
// # Operational notes
//
//   - FerretDB's own logs are passed to [Config.Logger] at warn level and above
//     only, tagged component=ferretdb. Its per-connection warnings (a dump of
//     every failed command, including the driver's endSessions on Disconnect,
//     which FerretDB does not implement, and "Connection stopped") are dropped.
//   - [Server.Close] waits for FerretDB to close its listener and backend.
//     FerretDB gives still-connected clients up to 3 seconds to disconnect, so
//     disconnect clients before calling Close for a fast shutdown.
//   - Start checks the listen address itself before handing it to FerretDB,
//     because FerretDB v1.24 leaks its backend (and later panics in a
//     finalizer) when its own listen fails after the backend was opened.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Default values used for zero fields of [Config].
const (
	DefaultDir  = "./data"
	DefaultAddr = "127.0.0.1:0"
)

// Config configures an embedded store. Zero value: Dir "./data", Addr
// "127.0.0.1:0" (random port), SQLite handler.
type Config struct {
	// Dir is the data directory for SQLite files; created if missing (0o755).
	// Unused when PostgreSQLURL is set.
	Dir string

	// Addr is the TCP listen address, e.g. "127.0.0.1:27017"; "" means
	// 127.0.0.1:0 (a free port chosen by the kernel).
	Addr string

	// Logger is optional; nil means slog.Default(). FerretDB's own records are
	// passed on only at warn level or above.
	Logger *slog.Logger

	// PostgreSQLURL, when set, makes the server use FerretDB's "postgresql"
	// handler with this URL (e.g. postgres://user:pass@127.0.0.1:5432/ferretdb)
	// instead of SQLite files in Dir.
	PostgreSQLURL string
}

// Server is a running embedded FerretDB.
type Server struct {
	uri    string
	addr   string
	logger *slog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when FerretDB's Run has returned

	closeOnce sync.Once
}

// Start starts FerretDB in process and waits (honouring ctx) until it accepts
// connections, verified with a driver Ping. It returns a wrapped error that
// names the directory and address if the port is taken or the directory is not
// writable.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: start: %w", context.Cause(ctx))
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}

	fcfg := &ferretdb.Config{
		Logger: slog.New(ferretLogHandler{
			min:   slog.LevelWarn,
			inner: logger.Handler(),
		}).With(slog.String("component", "ferretdb")),
	}

	var where string // describes the backend in errors and logs

	if cfg.PostgreSQLURL != "" {
		fcfg.Handler = "postgresql"
		fcfg.PostgreSQLURL = cfg.PostgreSQLURL
		where = "postgresql " + redactURL(cfg.PostgreSQLURL)

		// FerretDB retries a failing PostgreSQL connection on every command,
		// so a wrong URL would only show up as Start timing out.
		if err := checkPostgreSQL(ctx, cfg.PostgreSQLURL); err != nil {
			return nil, fmt.Errorf("embedded: %s (addr %s): %w", where, addr, err)
		}
	} else {
		dir := cfg.Dir
		if dir == "" {
			dir = DefaultDir
		}

		sqliteURL, absDir, err := prepareDir(dir)
		if err != nil {
			return nil, fmt.Errorf("embedded: data dir %q (addr %s): %w", dir, addr, err)
		}

		fcfg.Handler = "sqlite"
		fcfg.SQLiteURL = sqliteURL
		where = "dir " + absDir
	}

	// Bind the address ourselves first: to get a clear error for a taken port,
	// to resolve port 0 to a concrete port, and because ferretdb.New opens the
	// backend before listening and leaks it (the leaked SQLite pool panics in
	// a finalizer later) when listening fails.
	actual, err := checkAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded: listen on %s (%s): %w", addr, where, err)
	}

	fcfg.Listener.TCP = actual

	started := time.Now()

	f, err := ferretdb.New(fcfg)
	if err != nil {
		return nil, fmt.Errorf("embedded: start FerretDB on %s (%s): %w", actual, where, err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{
		uri:    f.MongoDBURI(), // safe: New has already bound the TCP listener
		addr:   actual,
		logger: logger,
		cancel: cancel,
		done:   make(chan struct{}),
	}

	// Listening on all interfaces (e.g. ":27017") gives "[::]:27017"; clients
	// on this machine should dial loopback instead.
	if host, port, err := net.SplitHostPort(actual); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			s.uri = "mongodb://" + net.JoinHostPort("127.0.0.1", port) + "/"
		}
	}

	go func() {
		defer close(s.done)

		_ = f.Run(runCtx) // always returns nil in v1.24
	}()

	if err = s.waitReady(ctx); err != nil {
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer closeCancel()

		_ = s.Close(closeCtx)

		return nil, fmt.Errorf("embedded: FerretDB on %s (%s) did not become ready: %w", s.addr, where, err)
	}

	logger.InfoContext(ctx, "embedded store started",
		slog.String("uri", s.uri),
		slog.String("backend", where),
		slog.Duration("took", time.Since(started)),
	)

	return s, nil
}

// URI returns the mongodb:// URI clients should use, e.g.
// mongodb://127.0.0.1:PORT/.
func (s *Server) URI() string {
	return s.uri
}

// Addr returns the actual host:port listened on.
func (s *Server) Addr() string {
	return s.addr
}

// Close stops FerretDB and waits for its goroutine to exit, so that the backend
// (SQLite files or PostgreSQL pool) is closed cleanly. It is safe to call more
// than once and from several goroutines. If ctx ends first, Close returns the
// context's error; FerretDB then keeps shutting down in the background.
//
// FerretDB gives connected clients up to 3 seconds to go away, so disconnect
// clients first for a fast Close.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.cancel()
	})

	select {
	case <-s.done:
		s.logger.DebugContext(ctx, "embedded store stopped", slog.String("addr", s.addr))
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded: waiting for FerretDB on %s to stop: %w", s.addr, context.Cause(ctx))
	}
}

// waitReady pings the server until it answers or ctx ends. It also lists
// databases, which makes the backend do real work (for PostgreSQL, connect).
func (s *Server) waitReady(ctx context.Context) error {
	client, err := mongo.Connect(options.Client().
		ApplyURI(s.uri).
		SetServerSelectionTimeout(2 * time.Second).
		SetMaxPoolSize(1))
	if err != nil {
		return err
	}

	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		_ = client.Disconnect(dctx)
	}()

	var lastErr error

	for {
		select {
		case <-s.done:
			return errors.New("FerretDB exited during start")
		default:
		}

		if lastErr = client.Ping(ctx, nil); lastErr == nil {
			// A command error here is a backend problem (e.g. a wrong
			// PostgreSQL password) that waiting will not fix.
			if _, err = client.ListDatabaseNames(ctx, bson.D{}); err != nil {
				return fmt.Errorf("list databases: %w", err)
			}

			return nil
		}

		select {
		case <-ctx.Done():
			return errors.Join(context.Cause(ctx), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prepareDir creates dir if needed, checks that it is a writable directory and
// returns FerretDB's SQLite URL for it and its absolute path.
func prepareDir(dir string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}

	// FerretDB passes the path to SQLite unescaped inside a URI.
	if strings.ContainsAny(abs, "?#") {
		return "", "", errors.New(`path must not contain "?" or "#"`)
	}

	if err = os.MkdirAll(abs, 0o755); err != nil {
		return "", "", fmt.Errorf("create: %w", err)
	}

	fi, err := os.Stat(abs)
	if err != nil {
		return "", "", err
	}

	if !fi.IsDir() {
		return "", "", errors.New("not a directory")
	}

	probe, err := os.CreateTemp(abs, ".hindsight-write-check-*")
	if err != nil {
		return "", "", fmt.Errorf("not writable: %w", err)
	}

	_ = probe.Close()
	_ = os.Remove(probe.Name())

	// FerretDB requires the "file" scheme and a trailing slash; file:///abs/dir/
	// makes it see the decoded path.
	u := url.URL{Scheme: "file", Path: abs + "/"}

	return u.String(), abs, nil
}

// checkPostgreSQL connects to the PostgreSQL URL once, to report a wrong
// URL, password or database clearly and at once.
func checkPostgreSQL(ctx context.Context, pgURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}

	return conn.Close(ctx)
}

// checkAddr verifies that addr can be listened on and returns it with port 0
// resolved to a concrete free port.
func checkAddr(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}

	actual := l.Addr().String()

	if err = l.Close(); err != nil {
		return "", err
	}

	return actual, nil
}

// redactURL removes a password from u for logs and errors.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}

	return p.Redacted()
}

// ferretLogHandler passes on FerretDB's records at min level or above only,
// and drops known per-connection noise below error level:
//
//   - "Response header: ..." / "Response message: ..." are logged at warn for
//     every command that fails (ok: 0), such as the driver's endSessions on
//     every Disconnect, which FerretDB does not implement, or an expected
//     duplicate-key error. The client gets the error anyway.
//   - "Connection stopped" is logged at warn whenever a client goes away
//     abruptly and for every connection still open at shutdown.
//
// It applies the attributes and groups of With and WithGroup to the inner
// handler only when a record is passed on. FerretDB's SQLite backend calls
// With for every statement it runs, with the statement's arguments (whole
// documents), and slog's handlers format attributes as they are given: an
// append of one 4 MiB event had them quoted into about 36 MiB of log text
// that was then discarded, the largest cost of an append on the embedded
// store (BenchmarkAppendAtLimit, and TestFerretLogAttrsLazy).
type ferretLogHandler struct {
	min   slog.Level
	inner slog.Handler
	with  []func(slog.Handler) slog.Handler // With and WithGroup, in order, not yet applied
}

func (h ferretLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.inner.Enabled(ctx, l)
}

func (h ferretLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError && isConnNoise(r.Message) {
		return nil
	}
	inner := h.inner
	for _, w := range h.with {
		inner = w(inner)
	}
	return inner.Handle(ctx, r)
}

func (h ferretLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.plus(func(in slog.Handler) slog.Handler { return in.WithAttrs(attrs) })
}

func (h ferretLogHandler) WithGroup(name string) slog.Handler {
	return h.plus(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}

// plus returns h with w after its own; the slice is copied, since two
// loggers made from one must not share what comes after it.
func (h ferretLogHandler) plus(w func(slog.Handler) slog.Handler) slog.Handler {
	return ferretLogHandler{min: h.min, inner: h.inner, with: append(h.with[:len(h.with):len(h.with)], w)}
}

// isConnNoise reports whether msg is one of FerretDB's per-connection
// messages that ferretLogHandler drops below error level.
func isConnNoise(msg string) bool {
	return strings.HasPrefix(msg, "Response header:") ||
		strings.HasPrefix(msg, "Response message:") ||
		msg == "Connection stopped"
}
