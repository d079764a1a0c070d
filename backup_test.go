package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/tlog"
)

func openTestStore(t *testing.T) *eventstore.Store {
	t.Helper()
	mc, db := storetest.Client(t)
	return storetest.Store(t, mc, db)
}

func quiet() *progress { return newProgress(io.Discard, "test", 0) }

// TestBackupRoundTrip: export, import into a fresh store, export again: the
// files are byte-identical, plain and gzip, and the restored store verifies.
// The log has several streams interleaved, multi-event appends, metadata and
// data with characters JSON encoders like to escape.
func TestBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := openTestStore(t)
	for i := 0; i < 1200; i++ { // more than one export page
		stream := fmt.Sprintf("cart-%d", i%7)
		evs := []eventstore.NewEvent{{Type: "Added", Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"html":"<a href='x'>&amp;</a>","u":"\u2028é"}`, i))}}
		if i%5 == 0 {
			evs = append(evs, eventstore.NewEvent{Type: "Noted", Data: json.RawMessage(`[1,2.50,"x"]`), Metadata: json.RawMessage(`{"by":"ops"}`)})
		}
		if _, err := src.Append(ctx, stream, eventstore.Any{}, evs...); err != nil {
			t.Fatal(err)
		}
	}
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			first := exportBytes(t, src, gz)
			dst := openTestStore(t)
			n, err := importFrom(ctx, dst, bytes.NewReader(first), quiet(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if n != src.HeadPosition() || dst.HeadPosition() != src.HeadPosition() {
				t.Fatalf("imported %d, head %d, want %d", n, dst.HeadPosition(), src.HeadPosition())
			}
			second := exportBytes(t, dst, gz)
			if !bytes.Equal(first, second) {
				t.Fatalf("the second export differs from the first (%d vs %d bytes)", len(first), len(second))
			}
			if _, _, err := verifyLog(ctx, dst, tlog.NewTree(), quiet()); err != nil {
				t.Fatalf("verify the restored store: %v", err)
			}
			// What is stored verifies too, not just the image.
			v, err := dst.VerifyStream(ctx, "cart-3")
			if err != nil || !v.OK {
				t.Fatalf("VerifyStream: %+v %v", v, err)
			}
			// The restored store takes new appends after the imported log.
			res, err := dst.Append(ctx, "cart-3", eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{}`)})
			if err != nil || res.FirstPosition != src.HeadPosition()+1 {
				t.Fatalf("append after import: %+v %v", res, err)
			}
			// And an import into it now is refused: it is not empty.
			if _, err := importFrom(ctx, dst, bytes.NewReader(first), quiet(), nil); !errors.Is(err, eventstore.ErrNotEmpty) {
				t.Fatalf("second import: %v, want ErrNotEmpty", err)
			}
		})
	}
}

func exportBytes(t *testing.T, s *eventstore.Store, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if gz {
		err = exportGzip(s, &buf)
	} else {
		_, err = exportTo(context.Background(), s, &buf, quiet(), testSigner)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportRefusesTampering: a file that was altered, cut, padded, has no
// trailer or a checkpoint of another key is refused before anything is
// written, naming what is wrong; --allow-unsigned lets an unsigned file
// through and says so.
func TestImportRefusesTampering(t *testing.T) {
	ctx := context.Background()
	src := openTestStore(t)
	for i := 0; i < 27; i++ {
		if _, err := src.Append(ctx, fmt.Sprintf("s-%d", i%4), eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	file := string(exportBytes(t, src, false))
	lines := strings.SplitAfter(file, "\n")
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) != 28 || !strings.HasPrefix(lines[27], `{"trailer":{"events":27,"treeSize":27,`) {
		t.Fatalf("export: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	events, trailerLine := lines[:27], lines[27]
	join := func(ls ...[]string) string {
		var b strings.Builder
		for _, l := range ls {
			b.WriteString(strings.Join(l, ""))
		}
		return b.String()
	}
	other, err := tlog.ParseKey(mustKey(t, "other"))
	if err != nil {
		t.Fatal(err)
	}
	unsignedFile := func() string {
		var buf bytes.Buffer
		if _, err := exportTo(ctx, src, &buf, quiet(), nil); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}()
	for _, c := range []struct {
		name, file string
		verifier   note.Verifier
		allow      bool
		want       string // "" = accepted
	}{
		{"intact", file, testSigner.Verifier, false, ""},
		{"altered data, trailer kept", join(events[:3], []string{strings.Replace(events[3], `"i":3`, `"i":4`, 1)}, events[4:], []string{trailerLine}), testSigner.Verifier, false, "position 4: hash mismatch"},
		{"event removed", join(events[:2], events[3:], []string{trailerLine}), testSigner.Verifier, false, "position 4, want 3"},
		{"events swapped", join(events[:2], []string{events[3], events[2]}, events[4:], []string{trailerLine}), testSigner.Verifier, false, "position 4, want 3"},
		{"cut at a line boundary", join(events[:13]), testSigner.Verifier, false, "no trailer"},
		{"cut, allowed", join(events[:13]), testSigner.Verifier, true, ""},
		{"cut inside a line", file[:len(file)-10], testSigner.Verifier, false, "does not end with a newline"},
		{"trailer of a shorter log", join(events[:26], []string{trailerLine}), testSigner.Verifier, false, "holds 26 events but its trailer says 27"},
		{"padded with spaces", file + "      ", testSigner.Verifier, false, "does not end with a newline"},
		{"padded with a line", file + events[0], testSigner.Verifier, false, "follows the trailer"},
		{"signed by another key", file, other.Verifier, false, "checkpoint"},
		{"no key to check the signature", file, nil, false, "no key to verify"},
		{"unsigned trailer", unsignedFile, testSigner.Verifier, false, "no signed checkpoint"},
		{"unsigned trailer, allowed", unsignedFile, testSigner.Verifier, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc, err := checkExport(strings.NewReader(c.file), c.verifier, c.allow)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
				if c.allow != (fc.unsigned != "") {
					t.Fatalf("unsigned = %q with allow %v", fc.unsigned, c.allow)
				}
			case err == nil || !strings.Contains(err.Error(), c.want):
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// TestImportBoundedMemory: a small gzip file that decompresses to a valid
// export plus 256 MiB of spaces (the gzip-bomb case) is refused while the
// import allocates a bounded amount, whatever the decompressed size.
func TestImportBoundedMemory(t *testing.T) {
	ctx := context.Background()
	src := openTestStore(t)
	for i := 0; i < 27; i++ {
		if _, err := src.Append(ctx, "s", eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := exportTo(ctx, src, zw, quiet(), testSigner); err != nil {
		t.Fatal(err)
	}
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for i := 0; i < 256; i++ {
		_, _ = zw.Write(spaces)
	}
	_ = zw.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := checkExport(bytes.NewReader(gz.Bytes()), testSigner.Verifier, false)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("err %v, want a line too long", err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d KiB of gzip decompressing to 256 MiB: refused after allocating %d MiB", gz.Len()>>10, alloc>>20)
	if alloc > 40<<20 {
		t.Fatalf("allocated %d MiB, want at most 40", alloc>>20)
	}
}

var testSigner = func() *tlog.Key {
	skey, _, err := note.GenerateKey(rand.Reader, "hindsight/backup-test")
	if err != nil {
		panic(err)
	}
	k, err := tlog.ParseKey(skey)
	if err != nil {
		panic(err)
	}
	return k
}()

func mustKey(t *testing.T, name string) string {
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

func exportGzip(s *eventstore.Store, w io.Writer) error {
	zw := gzip.NewWriter(w)
	if _, err := exportTo(context.Background(), s, zw, quiet(), testSigner); err != nil {
		return err
	}
	return zw.Close()
}

// TestBackupCommands runs export, import and verify as the command line
// does: a restore with the same signing key carries the trailer's checkpoint
// over, so verify checks the restored log against it; a file cut short is
// refused by import before anything is written.
func TestBackupCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signing.key")
	if _, _, err := tlog.LoadOrGenerateKey(keyFile, "hindsight/backup-commands"); err != nil {
		t.Fatal(err)
	}
	mc, db := storetest.Client(t)
	src := storetest.Store(t, mc, db)
	for i := 0; i < 30; i++ {
		if _, err := src.Append(ctx, fmt.Sprintf("bc-%d", i%3), eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	uri := storetest.URI(t)
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append(args, "--mongodb-uri", uri, "--signing-key-file", keyFile), func(string) string { return "" }, &out, &out)
		return out.String(), err
	}
	file := filepath.Join(dir, "backup.jsonl.gz")
	if out, err := cmd("export", "--out", file, "--gzip", "--database", db); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	_, db2 := storetest.Client(t)
	if out, err := cmd("import", "--in", file, "--database", db2); err != nil || !strings.Contains(out, "matches the trailer's signed checkpoint") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := cmd("verify", "--database", db2); err != nil || !strings.Contains(out, "ok: Merkle tree of 30 events") || !strings.Contains(out, "matches 1 of 1 checkpoints") {
		t.Fatalf("verify the restored store: %v\n%s", err, out)
	}

	// A plain export cut after 13 lines: refused, and nothing written.
	plain := filepath.Join(dir, "backup.jsonl")
	if out, err := cmd("export", "--out", plain, "--database", db); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(plain)
	lines := strings.SplitAfter(string(b), "\n")
	cut := filepath.Join(dir, "cut.jsonl")
	if err := os.WriteFile(cut, []byte(strings.Join(lines[:13], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	mc3, db3 := storetest.Client(t)
	out, err := cmd("import", "--in", cut, "--database", db3)
	if err == nil || !strings.Contains(err.Error(), "nothing was written") || !strings.Contains(err.Error(), "no trailer") {
		t.Fatalf("import of a cut file: %v\n%s", err, out)
	}
	if n, err := mc3.Database(db3).Collection(eventstore.CommitsCollection).CountDocuments(ctx, map[string]any{}); err != nil || n != 0 {
		t.Fatalf("the refused import wrote %d commits (%v)", n, err)
	}
	// --allow-unsigned imports it, and says what it skipped.
	out, err = cmd("import", "--in", cut, "--database", db3, "--allow-unsigned")
	if err != nil || !strings.Contains(out, "WARNING (--allow-unsigned): the file has NO TRAILER") || !strings.Contains(out, "imported 13 events") {
		t.Fatalf("import --allow-unsigned: %v\n%s", err, out)
	}
}
