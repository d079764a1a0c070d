package projections

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Snapshots of declarative projections, and a restart that resumes from
// them instead of folding the whole log again.
//
// Every SnapshotEvery-th state of a partition (the states eviction keeps)
// is saved as the eventstore snapshot
// {StreamID: the partition key, Projection: "declared:NAME:HASH@N",
// SchemaVersion: the definition version, Version: N}, where N is the
// partition's version and HASH a digest of the definition. Name, version
// and digest together mean a redefinition never reads another version's
// snapshots (a digest as well as the version: a log written again from
// scratch reuses versions). N is in the projection name because the
// eventstore finds a snapshot at or before a version only along a real
// stream, and a jq partition key is not one; with it, each kept state is
// one exact lookup in the eventstore's memory.
//
// Once a version is built, a sweep saves the kept states of the build, one
// write at a time and off the build's path (queued writes would be dropped
// by the thousand and billed to the build), and then a marker (StreamID: its definition
// stream, Projection: "declared:NAME:HASH", Version: the position it
// reached). A runner that finds a marker at start resumes: up to that
// position it only computes partition keys and records where each state
// begins, with no reducer and no state (an evicted state, as far as
// readers are concerned); a partition's latest state is folded again when
// its next event comes, and any state when it is read, from the kept state
// at or before it (stateAt), now loaded from the snapshot. Computing keys
// costs nothing for projections keyed by stream and a JSON decode for a
// key that is a plain path, against a reducer run and an encoding per event
// for a fold. Kept states of live events are offered to the snapshotter,
// which may drop them (snapshot.go): a missing snapshot only makes a fold
// longer, and the fold offers it again.
//
// A version that a newer one replaced deletes its snapshots and marker when
// it is retired (dropSnapshots), so the store holds those of current
// versions only.

// definitionDigest identifies a definition's content.
func definitionDigest(def Definition) string {
	b, _ := json.Marshal(def)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func (r *runner) markerName() string { return "declared:" + r.info.Name + ":" + r.digest }

func (r *runner) keptName(index int) string { return fmt.Sprintf("%s@%d", r.markerName(), index+1) }

// isKept says whether the index-th state of a partition is one eviction
// keeps and snapshots are taken of.
func (r *runner) isKept(index int) bool { return (index+1)%r.d.s.opts.SnapshotEvery == 0 }

// offerKept offers the index-th state of tl as a snapshot if it is a kept
// one. Callers hold mu (either way) or are the runner.
func (r *runner) offerKept(tl *timeline[json.RawMessage], index int, state json.RawMessage) {
	if !r.isKept(index) {
		return
	}
	name, from := r.keptName(index), tl.states[index].from
	at, _ := r.d.s.store.RecordedAt(from)
	r.d.s.snaps.offer(snapshotJob{
		key: snapshotKey(tl.key, name, int(r.info.Version), int64(index+1)),
		meta: eventstore.Snapshot{StreamID: tl.key, Projection: name, SchemaVersion: int(r.info.Version),
			Version: int64(index + 1), Position: from, RecordedAt: at},
		encode: func() (json.RawMessage, error) { return state, nil },
	})
}

// loadKept returns the snapshot of the index-th state of tl, if one was
// saved for this very state.
func (r *runner) loadKept(ctx context.Context, tl *timeline[json.RawMessage], index int) (json.RawMessage, bool) {
	sn, err := r.d.s.store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: tl.key, Projection: r.keptName(index),
		SchemaVersion: int(r.info.Version), At: eventstore.Now()})
	if err != nil || sn.Version != int64(index+1) || sn.Position != tl.states[index].from {
		return nil, false
	}
	r.keptRead.Add(1)
	return sn.State, true
}

// sweep saves the snapshots of the kept states up to position upTo that
// are missing, then the marker that lets a restart restore the version up
// to there. It stops at the first failed write, without a marker: a
// restart then folds the log.
func (r *runner) sweep(ctx context.Context, upTo int64) {
	r.mu.RLock()
	parts := append([]*timeline[json.RawMessage](nil), r.parts.created...)
	r.mu.RUnlock()
	k := r.d.s.opts.SnapshotEvery
	version := int(r.info.Version)
	for _, tl := range parts {
		for i := k - 1; ; i += k {
			r.mu.RLock()
			var sn eventstore.Snapshot
			ok := i < len(tl.states) && tl.states[i].from <= upTo
			if ok {
				sn = eventstore.Snapshot{StreamID: tl.key, Projection: r.keptName(i), SchemaVersion: version,
					Version: int64(i + 1), Position: tl.states[i].from, State: tl.states[i].state}
			}
			r.mu.RUnlock()
			if !ok {
				break
			}
			if sn.State == nil { // restored: the snapshot it came from exists
				continue
			}
			if _, have := r.loadKept(ctx, tl, i); have {
				continue
			}
			sn.RecordedAt, _ = r.d.s.store.RecordedAt(sn.Position)
			if err := r.save(ctx, sn); err != nil {
				return
			}
		}
	}
	if r.save(ctx, eventstore.Snapshot{StreamID: DefinitionStreamID(r.info.Name), Projection: r.markerName(),
		SchemaVersion: version, Version: max(1, upTo), Position: upTo, State: json.RawMessage(`{}`)}) == nil {
		r.marked.Store(upTo)
	}
}

func (r *runner) save(ctx context.Context, sn eventstore.Snapshot) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := r.d.s.store.SaveSnapshot(ctx, sn)
	if err != nil && ctx.Err() == nil {
		r.d.s.log.Warn("cannot save a snapshot of a declarative projection; a restart folds it again",
			"projection", r.info.Name, "definitionVersion", r.info.Version, "err", err)
	}
	return err
}

// resumePoint is the position up to which this version can be restored
// from its snapshots, or 0.
func (r *runner) resumePoint(ctx context.Context) int64 {
	sn, err := r.d.s.store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: DefinitionStreamID(r.info.Name),
		Projection: r.markerName(), SchemaVersion: int(r.info.Version), At: eventstore.Now()})
	if err != nil {
		return 0
	}
	return min(sn.Position, r.d.s.store.HeadPosition())
}

// restore records, without folding, that the event at ev.Position begins
// the next state of partition key: its JSON is left to stateAt.
func (r *runner) restore(key string, pos int64) {
	r.d.used.Add(stateOverhead)
	r.memory.Add(stateOverhead)
	r.mu.Lock()
	tl := r.parts.record(key, pos, nil)
	r.changes = append(r.changes, change{pos: pos, tl: tl, index: len(tl.states) - 1})
	r.mu.Unlock()
	r.restored.Add(1)
	r.advance(pos)
}

// previous returns the state the next event of partition key starts from:
// the one the runner kept as a jq value, or else (after a resume) its latest
// state folded again and put back in memory, or the initial state.
func (r *runner) previous(key string) (any, *stepError) {
	if prev, ok := r.latest[key]; ok {
		return prev, nil
	}
	r.mu.RLock()
	tl := r.parts.byKey[key]
	var (
		last json.RawMessage
		err  error
	)
	if tl != nil {
		last, err = r.stateAt(context.Background(), tl, len(tl.states)-1)
	}
	r.mu.RUnlock()
	if err != nil {
		return nil, &stepError{kind: FaultRuntimeError, msg: err.Error()}
	}
	if last == nil {
		return r.prog.initial, nil
	}
	r.mu.Lock()
	i := len(tl.states) - 1
	if tl.states[i].state == nil {
		tl.states[i].state = last
		r.d.used.Add(int64(len(last)))
		r.memory.Add(int64(len(last)))
		r.stateBytes.Add(int64(len(last)))
	}
	r.mu.Unlock()
	return jqDecode(last), nil
}
