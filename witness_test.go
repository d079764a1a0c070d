package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// testServer is the whole server (a.open and a.routes) on a database of the
// test store, behind httptest.
type testServer struct {
	a    *app
	comp *components
	url  string
	stop func()
}

func startTestServer(t testing.TB, db, keyFile string) *testServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := parseFlags("serve", serveSettings, []string{"--mongodb-uri", storetest.URI(t), "--database", db,
		"--signing-key-file", keyFile, "--checkpoint-interval", "1h", "--checkpoint-every", "1000000"},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(io.Discard, "text", cfg.LogLevel)
	a := &app{log: log, cfg: cfg, m: newServerMetrics()}
	if a.authn, err = newAuthenticator(cfg, log); err != nil {
		t.Fatal(err)
	}
	closers, err := a.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	comp := a.wired.Load()
	if err := comp.store.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for !comp.tlog.Checked() {
		if ctx.Err() != nil {
			t.Fatal("the verifiable log was not checked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv := httptest.NewServer(a.routes())
	ts := &testServer{a: a, comp: comp, url: srv.URL}
	ts.stop = func() {
		srv.Close()
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].close(cctx)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) appendN(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := ts.comp.store.Append(ctx, fmt.Sprintf("w-%d", i%2), eventstore.Any{},
			eventstore.NewEvent{Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.comp.tlog.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func runWitness(t *testing.T, url, state, vkey string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"witness", "--url", url, "--state", state, "--verifier-key", vkey, "--once"},
		func(string) string { return "" }, io.Discard, &out)
	return out.String(), err
}

// TestWitness follows a server's checkpoints: it trusts the first, accepts
// a grown log that proves consistency, and fails loudly (an error, exit code
// 1, an ERROR log line) when the log was rewritten under it, even when the
// rewrite recomputed every hash and removed the stored checkpoints it broke,
// and when the log was cut.
func TestWitness(t *testing.T) {
	client, db := storetest.Client(t)
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	key, _, err := tlog.LoadOrGenerateKey(keyFile, "hindsight/witness-test")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "witness.checkpoint")

	ts := startTestServer(t, db, keyFile)
	ts.appendN(t, 5)
	if out, err := runWitness(t, ts.url, state, key.VerifierKey); err != nil || !strings.Contains(out, "trusting the first checkpoint") {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	ts.appendN(t, 3)
	if out, err := runWitness(t, ts.url, state, key.VerifierKey); err != nil || !strings.Contains(out, "consistent with the last one witnessed") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(state)
	if cp, err := tlog.OpenCheckpoint(b, key.Verifier); err != nil || cp.Size != 8 {
		t.Fatalf("state: %+v %v", cp, err)
	}
	ts.stop()

	// The cover-up: event 2 edited, its stream's hashes recomputed, and
	// every stored checkpoint removed, so the server starts clean and signs
	// the rewritten log.
	ctx := context.Background()
	d := client.Database(db)
	tamper.AlterData(ctx, t, d, 2, `{"i":99}`)
	tamper.Rechain(ctx, t, d, "w-1")
	if _, err := d.Collection(tlog.CheckpointsCollection).DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	ts = startTestServer(t, db, keyFile)
	if f := ts.comp.tlog.Fault(); f != nil {
		t.Fatalf("the server caught it alone (%v); the test wants the case only a witness can catch", f)
	}
	ts.appendN(t, 1)
	out, err := runWitness(t, ts.url, state, key.VerifierKey)
	if err == nil || !strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(err.Error(), "consistency proof from 8 to 9") {
		t.Fatalf("witness after a rewrite: %v\n%s", err, out)
	}
	if exitCode(err, io.Discard) != 1 {
		t.Fatalf("exit code %d", exitCode(err, io.Discard))
	}
	ts.stop()

	// The log cut: its last two commits and the checkpoints removed.
	tamper.Delete(ctx, t, d, 9)
	tamper.Delete(ctx, t, d, 8)
	if _, err := d.Collection(tlog.CheckpointsCollection).DeleteMany(ctx, bson.D{}); err != nil {
		t.Fatal(err)
	}
	ts = startTestServer(t, db, keyFile)
	if _, err := ts.comp.tlog.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	out, err = runWitness(t, ts.url, state, key.VerifierKey)
	if err == nil || !strings.Contains(err.Error(), "the served tree has 7 events, fewer than the 8 already witnessed (positions 8 to 8 are gone)") {
		t.Fatalf("witness after a cut: %v\n%s", err, out)
	}
}
