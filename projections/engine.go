package projections

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// engineStats count what engines do, for metrics and benchmarks.
type engineStats struct {
	folds         atomic.Uint64 // calls of fold
	eventsFolded  atomic.Uint64 // events applied by those calls
	snapshotsUsed atomic.Uint64 // folds that started from a snapshot
}

// engine answers a projection's state of any stream at any version: the
// nearest usable start (a snapshot of this projection and schema version, or
// a cached state) at or before the version, plus the events after it, read
// from the store's memory image in pages. Folding passes every K-th version;
// the engine then offers a snapshot there, so a stream never needs more than
// K events folded once its snapshots are written.
type engine[S any] struct {
	store *eventstore.Store
	proj  Projection[S]
	codec StateCodec[S]
	every int64
	snaps *snapshotter
	stats *engineStats
	log   *slog.Logger
}

func newEngine[S any](store *eventstore.Store, p Projection[S], every int, snaps *snapshotter, stats *engineStats, log *slog.Logger) *engine[S] {
	return &engine[S]{store: store, proj: p, codec: codecOf(p), every: int64(every), snaps: snaps, stats: stats, log: log}
}

// at returns the state of the stream at version. base, when given, is a
// state of the same stream at some version; it is used when it is closer to
// version than the nearest snapshot. version must not exceed the stream's
// length in the memory image (callers resolve it there first).
func (e *engine[S]) at(ctx context.Context, streamID string, version int64, base *folded[S]) (folded[S], error) {
	start := folded[S]{state: e.proj.Initial()}
	if base != nil && base.version <= version {
		start = *base
	}
	if start.version < version {
		if sn, ok := e.snapshot(ctx, streamID, version); ok && sn.version > start.version {
			start = sn
			e.stats.snapshotsUsed.Add(1)
		}
	}
	e.stats.folds.Add(1)
	return e.fold(ctx, streamID, start, version, nil)
}

// snapshot loads the latest usable snapshot at or before version.
func (e *engine[S]) snapshot(ctx context.Context, streamID string, version int64) (folded[S], bool) {
	sn, err := e.store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: streamID, Projection: e.proj.Name(),
		SchemaVersion: e.proj.SchemaVersion(), At: eventstore.AtVersion(version)})
	if err != nil {
		if !errors.Is(err, eventstore.ErrSnapshotNotFound) {
			e.log.Warn("cannot load snapshot; folding from the start", "stream", streamID, "err", err)
		}
		return folded[S]{}, false
	}
	state, err := e.codec.DecodeState(sn.State)
	if err != nil {
		e.log.Error("unreadable snapshot; folding from the start", "stream", streamID,
			"projection", e.proj.Name(), "version", sn.Version, "err", err)
		return folded[S]{}, false
	}
	return folded[S]{state: state, version: sn.Version}, true
}

// fold applies the stream's events after start.version up to version to
// start's state, calling visit (if not nil) after each, and offers snapshots
// on the way.
func (e *engine[S]) fold(ctx context.Context, streamID string, start folded[S], version int64, visit func(eventstore.Event, S)) (folded[S], error) {
	cur := start
	for cur.version < version {
		page, err := e.store.ReadStream(ctx, streamID, eventstore.ReadStreamOptions{
			From: cur.version, Limit: int(min(version-cur.version, eventstore.MaxReadLimit))})
		if err != nil {
			return folded[S]{}, err
		}
		if len(page) == 0 {
			break // the stream is shorter than version; cannot happen for resolved versions
		}
		for _, ev := range page {
			cur = folded[S]{state: e.proj.Apply(cur.state, ev), version: ev.Version}
			if visit != nil {
				visit(ev, cur.state)
			}
			if ev.Version%e.every == 0 && ev.Version > start.version {
				e.offerSnapshot(ctx, ev, cur.state)
			}
		}
		e.stats.eventsFolded.Add(uint64(len(page)))
	}
	return cur, nil
}

// offerSnapshot queues a snapshot of state after ev unless one exists.
func (e *engine[S]) offerSnapshot(ctx context.Context, ev eventstore.Event, state S) {
	name, schema := e.proj.Name(), e.proj.SchemaVersion()
	have, err := e.store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: ev.StreamID, Projection: name,
		SchemaVersion: schema, At: eventstore.AtVersion(ev.Version)})
	if err == nil && have.Version == ev.Version {
		return
	}
	e.snaps.offer(snapshotJob{
		key: snapshotKey(ev.StreamID, name, schema, ev.Version),
		meta: eventstore.Snapshot{StreamID: ev.StreamID, Projection: name, SchemaVersion: schema,
			Version: ev.Version, Position: ev.Position, RecordedAt: ev.RecordedAt},
		encode: func() (json.RawMessage, error) { return e.codec.EncodeState(state) },
	})
}
