package projections

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// engineStats count what engines do, for metrics and benchmarks.
type engineStats struct {
	folds         atomic.Uint64 // calls of fold
	eventsFolded  atomic.Uint64 // events applied by those calls
	snapshotsUsed atomic.Uint64 // folds that started from a snapshot
}

// snapshotEveryBytes is the event data a fold passes between snapshot
// points, besides every K versions (Options.SnapshotEvery): a fold offers a
// snapshot once it has folded this much data since the last point, so once
// a stream has been folded, any version is at most this much plus one event
// (4 MiB at most) of data past a snapshot. With K alone, 100 events at the
// 4 MiB append limit were 400 MiB to fold for one read.
//
// The trade: a smaller value bounds a read's fold lower (about 1.5 ms of CPU
// and its data in allocations per MiB, measured by
// BenchmarkStreamStateLarge) but stores more snapshots; a snapshot holds
// the whole state (at most MaxStreamStateBytes), so the snapshots of a
// stream whose state stays near 4 MiB take up to half the size of its
// events. A stream with a small state takes one small snapshot per 8 MiB.
const snapshotEveryBytes = 8 << 20

// MaxStreamStateBytes bounds the merged state of a stream (Stream.state) as
// JSON: the largest state a snapshot can hold (eventstore.MaxSnapshotBytes).
// A larger state could never be snapshotted, so every read at or after its
// version would fold the stream from far back; it is ErrStateTooLarge
// instead, from the first version at which the state passes the limit on.
const MaxStreamStateBytes = eventstore.MaxSnapshotBytes

// MaxStreamStateValues bounds the JSON values a merged state holds (every
// object, array, member value and element, the state itself included).
// Within 4 MiB a state can hold some 300,000 small values, and a read costs
// about 0.55 µs and 200 bytes per value to decode its snapshot and write the
// answer whatever the events (BenchmarkStreamStateLarge: 184–218 ms and 66 MB
// for such a state): 65,536 values keep a read near 35 ms, within the cost
// every request is held to (issue 15). Over it is ErrStateTooLarge as well.
const MaxStreamStateValues = 1 << 16

// engine answers a projection's state of any stream at any version: the
// nearest usable start (a snapshot of this projection and schema version, or
// a cached state) at or before the version, plus the events after it, read
// from the store's memory image in pages. Folding passes every K-th version
// and every snapshotEveryBytes of event data; the engine then offers a
// snapshot there, so once its snapshots are written a read folds at most K
// events and about snapshotEveryBytes of data.
type engine[S any] struct {
	store *eventstore.Store
	proj  Projection[S]
	codec StateCodec[S]
	sized sizedProjection[S] // nil: the projection's state sizes are estimated
	every int64
	snaps *snapshotter
	stats *engineStats
	log   *slog.Logger

	// refused remembers, per stream, the first version whose state was over
	// the limits (*StateTooLargeError): the log never changes, so every read
	// at or after it is refused without folding again. A state of 300,000
	// small values took 165-340 ms to refuse each time, since nothing can be
	// snapshotted past it. Bounded by maxRefused entries.
	refused  sync.Map
	nRefused atomic.Int64
}

// maxRefused bounds the streams engine.refused remembers (an entry is a
// stream id and a few numbers).
const maxRefused = 100_000

// sizedProjection is a projection that keeps the exact size of its states as
// JSON (the merge projection). The engine then refuses a state over
// MaxStreamStateBytes, and the state cache counts what it holds exactly.
type sizedProjection[S any] interface {
	applySized(state S, size jsonSize, e eventstore.Event, own *ownedObjects) (S, jsonSize)
	stateSize(S) jsonSize
	encodeSized(S, jsonSize) (json.RawMessage, error) // EncodeState, knowing the size
}

func newEngine[S any](store *eventstore.Store, p Projection[S], every int, snaps *snapshotter, stats *engineStats, log *slog.Logger) *engine[S] {
	sized, _ := p.(sizedProjection[S])
	return &engine[S]{store: store, proj: p, codec: codecOf(p), sized: sized, every: int64(every), snaps: snaps, stats: stats, log: log}
}

// encode writes f's state as JSON, as a snapshot holds it.
func (e *engine[S]) encode(f folded[S]) (json.RawMessage, error) {
	if e.sized != nil {
		return e.sized.encodeSized(f.state, f.size)
	}
	return e.codec.EncodeState(f.state)
}

// initial is the state before a stream's first event.
func (e *engine[S]) initial() folded[S] {
	f := folded[S]{state: e.proj.Initial()}
	if e.sized != nil {
		f.size = e.sized.stateSize(f.state)
	}
	return f
}

// apply folds one event into f. Without a sizedProjection the size is an
// estimate: the state grows by at most about its events' data.
func (e *engine[S]) apply(f folded[S], ev eventstore.Event, own *ownedObjects) folded[S] {
	out := folded[S]{version: ev.Version, unsnapped: f.unsnapped + len(ev.Data)}
	if e.sized != nil {
		out.state, out.size = e.sized.applySized(f.state, f.size, ev, own)
	} else {
		out.state = e.proj.Apply(f.state, ev)
		out.size = f.size.plus(jsonSize{text: len(ev.Data), values: 1})
	}
	return out
}

// at returns the state of the stream at version. base, when given, is a
// state of the same stream at some version; it is used when it is closer to
// version than the nearest snapshot. version must not exceed the stream's
// length in the memory image (callers resolve it there first).
func (e *engine[S]) at(ctx context.Context, streamID string, version int64, base *folded[S]) (folded[S], error) {
	if r, ok := e.refused.Load(streamID); ok && r.(*StateTooLargeError).Version <= version {
		return folded[S]{}, r.(*StateTooLargeError)
	}
	start := e.initial()
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
	f, err := e.fold(ctx, streamID, start, version, nil)
	var tl *StateTooLargeError
	if errors.As(err, &tl) && e.nRefused.Load() < maxRefused {
		if _, loaded := e.refused.LoadOrStore(streamID, tl); !loaded {
			e.nRefused.Add(1)
		}
	}
	return f, err
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
	size := jsonSize{text: len(sn.State), values: 1}
	if e.sized != nil {
		size = e.sized.stateSize(state)
	}
	return folded[S]{state: state, version: sn.Version, size: size}, true
}

// fold applies the stream's events after start.version up to version to
// start's state, calling visit (if not nil) after each, and offers snapshots
// on the way. A sized state over MaxStreamStateBytes ends it with a
// *StateTooLargeError.
func (e *engine[S]) fold(ctx context.Context, streamID string, start folded[S], version int64, visit func(eventstore.Event, S)) (folded[S], error) {
	cur, n := start, 0
	defer func() { e.stats.eventsFolded.Add(uint64(n)) }()
	// The states between start and the result are the fold's own unless a
	// visitor or the snapshot writer is given them (see ownedObjects).
	var own *ownedObjects
	if visit == nil {
		own = &ownedObjects{m: map[unsafe.Pointer]struct{}{}}
	}
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
			cur = e.apply(cur, ev, own)
			n++
			if e.sized != nil {
				if err := stateTooLarge(streamID, ev.Version, cur.size); err != nil {
					return folded[S]{}, err
				}
			}
			if visit != nil {
				visit(ev, cur.state)
			}
			if ev.Version%e.every == 0 || cur.unsnapped >= snapshotEveryBytes {
				e.offerFolded(ctx, ev, cur)
				own.share()
				cur.unsnapped = 0
			}
		}
	}
	return cur, nil
}

// stateTooLarge refuses a merged state of size at version, or is nil when
// the state is within MaxStreamStateBytes and MaxStreamStateValues. Values is
// set only when the values, not the bytes, are what is over.
func stateTooLarge(streamID string, version int64, size jsonSize) *StateTooLargeError {
	if size.text <= MaxStreamStateBytes && size.values <= MaxStreamStateValues {
		return nil
	}
	err := &StateTooLargeError{StreamID: streamID, Version: version, Bytes: size.text, Limit: MaxStreamStateBytes}
	if size.text <= MaxStreamStateBytes {
		err.Values = size.values
	}
	return err
}

// offerSnapshot queues a snapshot of state after ev unless one exists.
func (e *engine[S]) offerSnapshot(ctx context.Context, ev eventstore.Event, state S) {
	e.offerFolded(ctx, ev, folded[S]{state: state, version: ev.Version})
}

// offerFolded is offerSnapshot of a state whose size a sizedProjection
// knows (it then writes the snapshot into a buffer of that size).
func (e *engine[S]) offerFolded(ctx context.Context, ev eventstore.Event, f folded[S]) {
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
		encode: func() (json.RawMessage, error) { return e.encode(f) },
	})
}
