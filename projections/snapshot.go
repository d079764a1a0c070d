package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// snapshotQueueSize bounds the snapshots waiting to be written. A snapshot is
// only an optimization, so when the queue is full new ones are dropped; the
// next fold that passes the same version offers it again.
const snapshotQueueSize = 1024

// snapshotJob is a snapshot to write. The state is encoded by the writer
// goroutine, off the command's path; that is safe because states are never
// modified once made.
type snapshotJob struct {
	key    snapshotID
	meta   eventstore.Snapshot // everything but State
	encode func() (json.RawMessage, error)
}

// snapshotter writes snapshots asynchronously with one goroutine, so taking a
// snapshot never slows the command or the read that passed its version.
type snapshotter struct {
	store *eventstore.Store
	log   *slog.Logger
	q     chan snapshotJob

	mu      sync.Mutex
	pending map[snapshotID]struct{} // queued or being written

	saved, dropped, failed atomic.Uint64
}

func newSnapshotter(store *eventstore.Store, log *slog.Logger) *snapshotter {
	return &snapshotter{store: store, log: log, q: make(chan snapshotJob, snapshotQueueSize),
		pending: map[snapshotID]struct{}{}}
}

// snapshotID names a snapshot in the writer's queue. It is a struct, not
// the fields joined into a string: a stream id or a jq partition key may
// hold any separator, so a joined form let two snapshots share a name and
// the second be dropped as already queued.
type snapshotID struct {
	stream, projection string
	schema             int
	version            int64
}

func (id snapshotID) String() string {
	return fmt.Sprintf("%q of %q (schema %d) at version %d", id.stream, id.projection, id.schema, id.version)
}

func snapshotKey(streamID, projection string, schema int, version int64) snapshotID {
	return snapshotID{stream: streamID, projection: projection, schema: schema, version: version}
}

// offer queues a snapshot unless the same one is already queued, or drops it
// when the queue is full. It never blocks.
func (w *snapshotter) offer(job snapshotJob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.pending[job.key]; dup {
		return
	}
	select {
	case w.q <- job:
		w.pending[job.key] = struct{}{}
	default:
		w.dropped.Add(1)
	}
}

func (w *snapshotter) done(key snapshotID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, key)
}

// run writes queued snapshots until ctx ends; what is still queued then is
// dropped.
func (w *snapshotter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-w.q:
			w.write(ctx, job)
			w.done(job.key)
		}
	}
}

func (w *snapshotter) write(ctx context.Context, job snapshotJob) {
	state, err := job.encode()
	if err != nil {
		w.failed.Add(1)
		w.log.Error("cannot encode snapshot state", "snapshot", job.key.String(), "err", err)
		return
	}
	sn := job.meta
	sn.State = state
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.store.SaveSnapshot(ctx, sn); err != nil {
		w.failed.Add(1)
		if ctx.Err() == nil {
			w.log.Warn("cannot save snapshot", "snapshot", job.key.String(), "err", err)
		}
		return
	}
	w.saved.Add(1)
}
