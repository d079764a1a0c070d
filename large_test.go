package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/tlog"
)

// TestLargeLog proves that a data directory the server could write can
// always be read back, at realistic sizes (issue 14): more than 100 MB in
// the store, with appends at the 4 MiB limit and many 64 KiB events. It
// restarts the store under a memory budget far below the log (so reads go
// to the store), requires it to become ready, verifies every chain, exports,
// imports into an empty store and exports again byte for byte, and has a
// subscriber catch up from position 0. Before replies were bounded by bytes,
// the restart failed forever with "length of read message too large".
// It takes about a minute here; -short skips it.
func TestLargeLog(t *testing.T) {
	if testing.Short() {
		t.Skip("writes more than 100 MB")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	mc, db := storetest.Client(t)
	src := storetest.Store(t, mc, db)
	want := map[int64][32]byte{} // position -> digest of data
	var total int64
	add := func(stream string, evs ...eventstore.NewEvent) {
		t.Helper()
		res, err := src.Append(ctx, stream, nil, evs...)
		if err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
		for _, e := range res.Events {
			want[e.Position] = sha256.Sum256(e.Data)
			total += int64(len(e.Data))
		}
	}
	text := func(n int, c byte) json.RawMessage {
		return json.RawMessage(`"` + strings.Repeat(string(c), n-2) + `"`)
	}
	for i := 0; total < 110<<20; i++ {
		// One append at the limit, 16 events of 64 KiB in four streams,
		// and a few small ones between them.
		add("big", eventstore.NewEvent{Type: "Big", Data: text(eventstore.MaxAppendBytes, byte('a'+i%26))})
		for j := 0; j < 16; j++ {
			add(fmt.Sprintf("medium-%d", j%4), eventstore.NewEvent{Type: "Medium", Data: text(64<<10, byte('A'+j))})
		}
		for j := 0; j < 8; j++ {
			add(fmt.Sprintf("small-%d", j), eventstore.NewEvent{Type: "Small", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		}
	}
	head := src.HeadPosition()
	t.Logf("wrote %d events, %d MB of data, in %v", head, total>>20, time.Since(start).Round(time.Second))

	// Restart: a new store over the same database, with a budget of 16 MiB.
	step := time.Now()
	r := storetest.Store(t, mc, db, eventstore.WithMemoryBudget(16<<20))
	if r.HeadPosition() != head || r.Problem() != "" {
		t.Fatalf("restarted at head %d (problem %q), want %d", r.HeadPosition(), r.Problem(), head)
	}
	if st := r.Stats(); st.Evictions == 0 {
		t.Fatalf("nothing evicted under a budget of 16 MiB: the miss paths are not exercised")
	}
	t.Logf("restart: ready in %v", time.Since(step).Round(time.Millisecond))

	step = time.Now()
	n, _, err := verifyLog(ctx, r, tlog.NewTree(), quiet())
	if err != nil || n != head {
		t.Fatalf("verify: %d events, %v; want %d and no error", n, err, head)
	}
	if v, err := r.VerifyStream(ctx, "big"); err != nil || !v.OK {
		t.Fatalf("VerifyStream(big) = %+v, %v", v, err)
	}
	t.Logf("verify: %v", time.Since(step).Round(time.Millisecond))

	step = time.Now()
	dir := t.TempDir()
	first := exportFile(t, ctx, r, filepath.Join(dir, "first.jsonl"))
	mc2, db2 := storetest.Client(t)
	dst := storetest.Store(t, mc2, db2, eventstore.WithMemoryBudget(16<<20))
	f, err := os.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := importFrom(ctx, dst, f, quiet(), nil); err != nil || n != head {
		t.Fatalf("import: %d events, %v; want %d", n, err, head)
	}
	second := exportFile(t, ctx, dst, filepath.Join(dir, "second.jsonl"))
	if !sameFile(t, first, second) {
		t.Fatalf("the export of the restored store differs from the original export")
	}
	t.Logf("export, import, export: %v", time.Since(step).Round(time.Millisecond))

	// A subscriber from position 0 gets every event, in order, as written.
	step = time.Now()
	after := int64(0)
	sub, err := r.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &after})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for p := int64(1); p <= head; p++ {
		e, err := sub.Recv(ctx)
		if err != nil {
			t.Fatalf("subscriber at position %d: %v", p, err)
		}
		if e.Position != p || sha256.Sum256(e.Data) != want[p] {
			t.Fatalf("subscriber got position %d (%d bytes), want position %d as written", e.Position, len(e.Data), p)
		}
	}
	if st := r.Stats(); st.Misses == 0 {
		t.Fatalf("no read went to the store under a budget of 16 MiB")
	}
	t.Logf("subscriber from 0: %v; total %v", time.Since(step).Round(time.Millisecond), time.Since(start).Round(time.Second))
}

func exportFile(t *testing.T, ctx context.Context, s *eventstore.Store, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := exportTo(ctx, s, w, quiet(), testSigner); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ra, rb := bufio.NewReaderSize(fa, 1<<20), bufio.NewReaderSize(fb, 1<<20)
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(ra, bufA)
		nb, eb := io.ReadFull(rb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea == eb || (ea == io.ErrUnexpectedEOF && eb == io.ErrUnexpectedEOF)
		}
	}
}
