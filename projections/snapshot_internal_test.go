package projections

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// TestSnapshotIDsDoNotCollide: two different snapshots whose fields, joined
// with "|", read the same (a partition key may hold a "|") are both queued.
// With the joined name the second was dropped as already queued.
func TestSnapshotIDsDoNotCollide(t *testing.T) {
	pairs := [][2]snapshotJob{
		{job("a|b", "c", 1, 1), job("a", "b|c", 1, 1)},
		{job("k|declared:p:h@100|1", "declared:p:h@100", 1, 100), job("k", "declared:p:h@100|1|declared:p:h@100", 1, 100)},
		{job("x|1", "p", 2, 3), job("x", "1|p", 2, 3)},
	}
	for _, p := range pairs {
		w := newSnapshotter(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		w.offer(p[0])
		w.offer(p[1])
		w.offer(p[0]) // a true duplicate still is one
		if len(w.q) != 2 || w.dropped.Load() != 0 {
			t.Fatalf("%v and %v: %d queued, %d dropped; want both queued once", p[0].key, p[1].key, len(w.q), w.dropped.Load())
		}
	}
}

func job(stream, projection string, schema int, version int64) snapshotJob {
	return snapshotJob{key: snapshotKey(stream, projection, schema, version),
		meta:   eventstore.Snapshot{StreamID: stream, Projection: projection, SchemaVersion: schema, Version: version},
		encode: func() (json.RawMessage, error) { return json.RawMessage(`{}`), nil }}
}
