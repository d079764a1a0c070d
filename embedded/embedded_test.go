package embedded_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()

	buf := new(syncBuffer)
	l := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})

	return l, buf
}

func start(t *testing.T, cfg embedded.Config) *embedded.Server {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	s, err := embedded.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		if err := s.Close(ctx); err != nil {
			t.Errorf("cleanup Close: %v", err)
		}
	})

	return s
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()

	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}

	return c
}

func disconnect(t *testing.T, c *mongo.Client) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
}

func closeServer(t *testing.T, s *embedded.Server) time.Duration {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	began := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	return time.Since(began)
}

func TestDurableAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data") // created by Start
	logger, logs := testLogger(t)

	s1 := start(t, embedded.Config{Dir: dir, Logger: logger})

	if !strings.HasPrefix(s1.URI(), "mongodb://127.0.0.1:") {
		t.Errorf("URI = %q, want mongodb://127.0.0.1:PORT/", s1.URI())
	}

	host, port, err := net.SplitHostPort(s1.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Errorf("Addr = %q (%v), want 127.0.0.1 and a real port", s1.Addr(), err)
	}

	if s1.URI() != "mongodb://"+s1.Addr()+"/" {
		t.Errorf("URI %q does not match Addr %q", s1.URI(), s1.Addr())
	}

	ctx := t.Context()

	c1 := connect(t, s1.URI())
	coll := c1.Database("durability").Collection("docs")

	if _, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: int32(42)}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}

	disconnect(t, c1)

	took := closeServer(t, s1)
	t.Logf("first Close took %s", took)

	// Closing again, in any order, is fine.
	if d := closeServer(t, s1); d > time.Second {
		t.Errorf("second Close took %s", d)
	}

	matches, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if len(matches) == 0 {
		t.Fatalf("no SQLite files in %s", dir)
	}

	s2 := start(t, embedded.Config{Dir: dir, Logger: logger})

	c2 := connect(t, s2.URI())
	defer disconnect(t, c2)

	var got struct {
		ID string `bson:"_id"`
		N  int32  `bson:"n"`
	}

	if err = c2.Database("durability").Collection("docs").FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil {
		t.Fatalf("FindOne after restart: %v", err)
	}

	if got.ID != "a" || got.N != 42 {
		t.Fatalf("got %+v after restart, want {a 42}", got)
	}

	// FerretDB's info-level chatter must be filtered out.
	if strings.Contains(logs.String(), "Listening on TCP") || strings.Contains(logs.String(), "endSessions") {
		t.Errorf("FerretDB info logs were not filtered:\n%s", logs.String())
	}

	if !strings.Contains(logs.String(), "embedded store started") {
		t.Errorf("missing start log line:\n%s", logs.String())
	}
}

func TestSamePortFails(t *testing.T) {
	// Reserve a free port, then use it as a fixed address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	addr := l.Addr().String()
	l.Close()

	logger, _ := testLogger(t)

	s1 := start(t, embedded.Config{Dir: t.TempDir(), Addr: addr, Logger: logger})
	if s1.Addr() != addr {
		t.Errorf("Addr = %q, want %q", s1.Addr(), addr)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	s2, err := embedded.Start(ctx, embedded.Config{Dir: t.TempDir(), Addr: addr, Logger: logger})
	if err == nil {
		_ = s2.Close(ctx)
		t.Fatal("second Start on the same port succeeded")
	}

	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error does not mention the address %s: %v", addr, err)
	}

	t.Logf("second Start: %v", err)

	// The first server keeps working.
	c := connect(t, s1.URI())
	defer disconnect(t, c)

	if err = c.Ping(ctx, nil); err != nil {
		t.Fatalf("Ping first server: %v", err)
	}
}

func TestAllInterfaces(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()

	s := start(t, embedded.Config{Dir: t.TempDir(), Addr: ":" + port})

	if want := "mongodb://127.0.0.1:" + port + "/"; s.URI() != want {
		t.Errorf("URI = %q, want %q", s.URI(), want)
	}

	if _, p, _ := net.SplitHostPort(s.Addr()); p != port {
		t.Errorf("Addr = %q, want port %s", s.Addr(), port)
	}
}

func TestDirNotWritable(t *testing.T) {
	// A path below a regular file can never be created, even as root.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(file, "data")

	_, err := embedded.Start(t.Context(), embedded.Config{Dir: dir})
	if err == nil {
		t.Fatal("Start succeeded with an impossible data dir")
	}

	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error does not mention the dir %s: %v", dir, err)
	}

	t.Logf("Start: %v", err)

	// Not a directory at all.
	_, err = embedded.Start(t.Context(), embedded.Config{Dir: file})
	if err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Start with a file as dir: %v", err)
	}
}

func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	s, err := embedded.Start(ctx, embedded.Config{Dir: t.TempDir()})
	if err == nil {
		_ = s.Close(t.Context())
		t.Fatal("Start with a canceled context succeeded")
	}
}

func TestCloseWithConnectedClient(t *testing.T) {
	s := start(t, embedded.Config{Dir: t.TempDir()})

	c := connect(t, s.URI())
	defer disconnect(t, c)

	if err := c.Ping(t.Context(), nil); err != nil {
		t.Fatal(err)
	}

	// FerretDB waits up to 3 s for connected clients; an earlier deadline is
	// honoured and reported.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	err := s.Close(ctx)
	t.Logf("Close with a short deadline and a connected client: %v", err)

	took := closeServer(t, s)
	t.Logf("then Close took %s more", took)
}

// TestPostgreSQL runs only when HINDSIGHT_TEST_PG_URL points at a PostgreSQL
// database usable by FerretDB (see pgstore.sh); PostgreSQL is optional here.
func TestPostgreSQL(t *testing.T) {
	pgURL := os.Getenv("HINDSIGHT_TEST_PG_URL")
	if pgURL == "" {
		t.Skip("HINDSIGHT_TEST_PG_URL not set; run embedded/pgstore.sh to get one")
	}

	logger, _ := testLogger(t)
	s := start(t, embedded.Config{PostgreSQLURL: pgURL, Logger: logger})

	ctx := t.Context()
	c := connect(t, s.URI())
	defer disconnect(t, c)

	// Not "pg_...": PostgreSQL reserves that schema prefix, and FerretDB maps
	// databases to schemas.
	db := c.Database("pgtest_" + time.Now().Format("150405"))
	defer db.Drop(context.Background())

	if _, err := db.Collection("docs").InsertOne(ctx, bson.D{{Key: "_id", Value: "p"}, {Key: "v", Value: "hello"}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}

	var got bson.M
	if err := db.Collection("docs").FindOne(ctx, bson.D{{Key: "v", Value: "hello"}}).Decode(&got); err != nil {
		t.Fatalf("FindOne: %v", err)
	}

	if got["_id"] != "p" {
		t.Fatalf("got %v", got)
	}
}

func TestPostgreSQLBadURL(t *testing.T) {
	pgURL := os.Getenv("HINDSIGHT_TEST_PG_URL")
	if pgURL == "" {
		t.Skip("HINDSIGHT_TEST_PG_URL not set; run embedded/pgstore.sh to get one")
	}

	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}

	u.User = url.UserPassword(u.User.Username(), "wrong-password")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	began := time.Now()

	s, err := embedded.Start(ctx, embedded.Config{PostgreSQLURL: u.String()})
	if err == nil {
		_ = s.Close(ctx)
		t.Fatal("Start with a wrong PostgreSQL password succeeded")
	}

	if strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("error leaks the password: %v", err)
	}

	t.Logf("Start failed after %s: %v", time.Since(began), err)
}
