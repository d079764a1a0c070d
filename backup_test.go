package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
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
			if _, _, err := verifyLog(ctx, dst, quiet()); err != nil {
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
		_, err = exportTo(context.Background(), s, &buf, quiet())
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportRefusesTampering: a file with an altered, removed or reordered
// event is refused at that event, naming its position.
func TestImportRefusesTampering(t *testing.T) {
	ctx := context.Background()
	src := openTestStore(t)
	for i := 0; i < 6; i++ {
		if _, err := src.Append(ctx, fmt.Sprintf("s-%d", i%2), eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(exportBytes(t, src, false)), "\n"), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n") + "\n"
	}
	for _, c := range []struct {
		name, file, want string
	}{
		{"altered data", strings.Join(lines[:3], "") + strings.Replace(lines[3], `"i":3`, `"i":4`, 1) + strings.Join(lines[4:], ""), "position 4: hash mismatch"},
		{"event removed", strings.Join(lines[:2], "") + strings.Join(lines[3:], ""), "positions must be consecutive"},
		{"events swapped", lines[0] + lines[1] + lines[3] + lines[2] + strings.Join(lines[4:], ""), "positions must be consecutive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := openTestStore(t)
			_, err := importFrom(ctx, dst, strings.NewReader(c.file), quiet(), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func exportGzip(s *eventstore.Store, w io.Writer) error {
	zw := gzip.NewWriter(w)
	if _, err := exportTo(context.Background(), s, zw, quiet()); err != nil {
		return err
	}
	return zw.Close()
}
