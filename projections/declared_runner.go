package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// caughtUpLag is how close to the head a version being built must come to
// take over from the version answering: at the head. Anything less would let
// a version that faults on the events it has not folded yet replace one that
// answers. The runner folds far faster than the log grows, so it reaches the
// head even under a steady stream of appends.
const caughtUpLag = 0

// runner builds and keeps current one version of a declarative projection:
// the temporal read model of its partitions (temporal.go), fed from the
// global log in position order. Only the runner's goroutine writes; readers
// take mu for reading.
type runner struct {
	d    *Declarative
	info DefinitionVersion // the static part: definition, version, position, recordedAt
	prog *program

	mu      sync.RWMutex
	parts   partitionSet[json.RawMessage] // every state, encoded (see program.reduce)
	changes []change                      // every state recorded, by position: what subscriptions read
	keys    partitioner                   // the runner's goroutine's
	latest  map[string]any                // partition key -> its latest state as a jq value, for the next reduction
	retired bool                          // its states were dropped (retire)
	// retiredCounts keeps partitions and states for status after retire.
	retiredCounts [2]int
	watermark

	fault    atomic.Pointer[Fault]
	faulted  chan struct{} // closed when fault is set
	caughtUp atomic.Bool
	target   atomic.Int64 // the head when the build started, for progress
	folded   atomic.Uint64
	// stateBytes is the JSON size of every state held.
	stateBytes atomic.Int64
	started    time.Time

	cancel   context.CancelFunc
	life     context.Context // the service's: retire's clean-up runs under it
	stopped  chan struct{}   // closed when run returns
	released chan struct{}   // closed once retire has given the states' memory back
	memory   atomic.Int64    // this runner's share of Declarative.used

	// Eviction (declared_evict.go): hand and evictedStates under mu.
	hand          int
	evictedStates int
	evictedBytes  atomic.Int64
	refolds       atomic.Uint64 // evicted states folded again for a read

	// Resuming from snapshots (declared_resume.go).
	digest   string        // of the definition, in snapshot names
	resumeTo atomic.Int64  // events up to here are restored, not folded
	restored atomic.Uint64 // events restored
	marked   atomic.Int64  // position of the last marker this runner saved
	keptRead atomic.Uint64 // snapshots stateAt started from
	refilled atomic.Uint64 // restored states folded again in the background (refill)
}

// stateOverhead is what one state costs in memory beyond its JSON: its
// slice header and position in the timeline, its entry in changes.
const stateOverhead = 64

// retire stops a runner that no longer answers and, once it has stopped,
// drops its states and gives their memory back to the budget. Queries that
// took it before the switch had LagWait and more to finish (promote).
func (r *runner) retire() {
	r.cancel()
	go func() {
		<-r.stopped
		r.mu.Lock()
		r.retired = true
		r.retiredCounts = [2]int{len(r.parts.created), r.parts.states}
		r.parts, r.changes, r.latest, r.keys.sticky = newPartitionSet[json.RawMessage](), nil, nil, nil
		r.d.used.Add(-r.memory.Swap(0))
		close(r.released)
		r.mu.Unlock()
		r.dropSnapshots()
	}()
}

// dropSnapshots deletes the retired version's snapshots and marker: no
// instance restores a version that a newer one replaced (each takes in
// every definition at start, and the newest supersedes the others, which
// land here again, so what a failed or late write left is deleted then).
func (r *runner) dropSnapshots() {
	ctx := r.life
	if ctx == nil || ctx.Err() != nil {
		return
	}
	n, err := r.d.s.store.DeleteSnapshots(ctx, eventstore.SnapshotDelete{Projection: r.markerName(), Prefix: true,
		SchemaVersion: int(r.info.Version)})
	switch {
	case ctx.Err() != nil: // closing
	case err != nil:
		r.d.s.log.Warn("cannot delete the snapshots of a replaced declarative projection version; its next start tries again",
			"projection", r.info.Name, "definitionVersion", r.info.Version, "err", err)
	case n > 0:
		r.d.s.log.Info("deleted the snapshots of a replaced declarative projection version",
			"projection", r.info.Name, "definitionVersion", r.info.Version, "snapshots", n)
	}
}

// change is one state recorded: tl.states[index], valid from pos.
type change struct {
	pos   int64
	tl    *timeline[json.RawMessage]
	index int
}

func newRunner(d *Declarative, info DefinitionVersion, prog *program) *runner {
	return &runner{d: d, info: info, prog: prog, parts: newPartitionSet[json.RawMessage](), digest: definitionDigest(prog.def),
		keys: newPartitioner(prog), latest: map[string]any{}, faulted: make(chan struct{}), stopped: make(chan struct{}), released: make(chan struct{})}
}

// position is the checkpoint, for pointOn.
func (r *runner) position() int64 { return r.checkpoint.Load() }

// waitFor blocks until the checkpoint reaches p, the runner faults before p
// (a *FaultError) or ctx ends.
func (r *runner) waitFor(ctx context.Context, p int64) error {
	for {
		ch := r.wait()
		if r.checkpoint.Load() >= p {
			return nil
		}
		if f := r.fault.Load(); f != nil {
			return &FaultError{Fault: *f}
		}
		select {
		case <-ch:
		case <-r.faulted:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run follows the whole log from the start until ctx ends or the reducer
// faults. Like the order projector it reads every event, not only matching
// ones, so that its checkpoint is exact (guarantee 8).
func (r *runner) run(ctx context.Context) {
	defer close(r.stopped)
	s := r.d.s
	if err := s.store.WaitReady(ctx); err != nil {
		return
	}
	r.started = time.Now()
	r.target.Store(s.store.HeadPosition())
	log := s.log.With("projection", r.info.Name, "definitionVersion", r.info.Version)
	r.resumeTo.Store(r.resumePoint(ctx))
	log.Info("building declarative projection from the log", "positions", r.target.Load(),
		"restoredFromSnapshotsUpTo", r.resumeTo.Load())
	lastLog := time.Now()
	for ctx.Err() == nil {
		after := r.checkpoint.Load()
		sub, err := s.store.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &after})
		if err == nil {
			err = r.follow(ctx, sub, log, &lastLog)
			sub.Close()
		}
		if ctx.Err() != nil || errors.Is(err, eventstore.ErrClosed) || errors.Is(err, ErrProjectionFaulted) {
			return
		}
		log.Warn("declarative projection stopped reading; resuming from its checkpoint",
			"checkpoint", r.checkpoint.Load(), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *runner) follow(ctx context.Context, sub *eventstore.Subscription, log *slog.Logger, lastLog *time.Time) error {
	feed := &runnerFeed{r: r, ctx: ctx, sub: sub, log: log, lastLog: lastLog}
	if err := r.prog.fold(feed); err != nil { // it compiled when it was defined
		return r.stopAt(&Fault{Projection: r.info.Name, DefinitionVersion: r.info.Version, Kind: FaultRuntimeError,
			Message: "the reducer does not compile: " + err.Error(), Position: r.checkpoint.Load() + 1}, log)
	}
	return feed.err
}

// runnerFeed reads the log for the runner's reducerStream: it hands out
// the matching events that need the reducer, as {state, event}, and
// records each one's next state before it reads on.
type runnerFeed struct {
	r       *runner
	ctx     context.Context
	sub     *eventstore.Subscription
	log     *slog.Logger
	lastLog *time.Time

	ev  eventstore.Event // the event being reduced
	key string           // its partition
	err error            // why the feed ended
}

func (f *runnerFeed) input() (any, bool) {
	r := f.r
	for {
		ev, err := f.sub.Recv(f.ctx)
		if err != nil {
			f.err = err
			return nil, false
		}
		if !r.prog.def.matches(&ev) {
			r.advance(ev.Position)
			r.passed(f.ctx, ev.Position, f.log, f.lastLog)
			continue
		}
		input, key, fault := r.prepare(&ev)
		if fault != nil {
			f.err = r.stopAt(fault, f.log)
			return nil, false
		}
		if input == nil { // nothing to reduce
			r.passed(f.ctx, ev.Position, f.log, f.lastLog)
			continue
		}
		f.ev, f.key = ev, key
		return input, true
	}
}

func (f *runnerFeed) result(next any, encoded json.RawMessage, sf *stepError) bool {
	r := f.r
	fault := (*Fault)(nil)
	if sf != nil {
		fault = r.faultAt(&f.ev, sf)
	} else {
		fault = r.commit(&f.ev, f.key, next, encoded)
	}
	if fault != nil {
		f.err = r.stopAt(fault, f.log)
		return false
	}
	r.passed(f.ctx, f.ev.Position, f.log, f.lastLog)
	return true
}

// stopAt faults the runner. A fault stops it where it is: it keeps
// answering up to the event (if it is the active version) until a new
// version replaces it.
func (r *runner) stopAt(f *Fault, log *slog.Logger) error {
	r.fault.Store(f)
	close(r.faulted)
	log.Error("declarative projection faulted; it stopped before the event",
		"position", f.Position, "stream", f.StreamID, "type", f.EventType, "kind", f.Kind, "err", f.Message)
	return &FaultError{Fault: *f}
}

// passed is called once the runner is done with the event at pos: it
// notices the build catching up with the head, and logs its progress.
func (r *runner) passed(ctx context.Context, pos int64, log *slog.Logger, lastLog *time.Time) {
	if r.caughtUp.Load() {
		return
	}
	if r.d.s.store.HeadPosition()-pos <= caughtUpLag {
		r.caughtUp.Store(true)
		r.d.s.goTracked(func() { r.sweep(ctx, pos) })
		if to := r.resumeTo.Load(); to > 0 && !r.d.s.opts.noRefill {
			r.d.s.goTracked(func() { r.refill(ctx, to) })
		}
		log.Info("declarative projection built", "position", pos, "events", r.folded.Load(), "restored", r.restored.Load(),
			"partitions", r.partitionCount(), "took", time.Since(r.started).Round(time.Millisecond))
		r.d.promote(r)
	} else if time.Since(*lastLog) >= time.Second {
		*lastLog = time.Now()
		t := max(1, r.target.Load())
		log.Info("building declarative projection", "position", pos, "of", t,
			"percent", min(100, pos*100/t), "events_per_sec", int(float64(pos)/time.Since(r.started).Seconds()))
	}
}

// prepare finds a matching event's partition and returns the reducer's
// input for it; a nil input means there is nothing to reduce (the event
// was restored from a snapshot, or has no partition) and the checkpoint
// has moved past it. A fault leaves the checkpoint just before the event.
func (r *runner) prepare(ev *eventstore.Event) (input any, key string, fault *Fault) {
	event := eventValue(ev)
	key, f := r.keys.key(ev, event)
	if f != nil {
		return nil, "", r.faultAt(ev, f)
	}
	if key == "" {
		r.advance(ev.Position)
		return nil, "", nil
	}
	if ev.Position <= r.resumeTo.Load() {
		r.restore(key, ev.Position)
		return nil, "", nil
	}
	prev, f := r.previous(key)
	if f != nil {
		return nil, "", r.faultAt(ev, f)
	}
	return reducerInput(prev, event), key, nil
}

// commit records the next state of the event's partition and advances the
// checkpoint, unless the memory budget is full.
func (r *runner) commit(ev *eventstore.Event, key string, next any, encoded json.RawMessage) *Fault {
	cost := int64(len(encoded) + stateOverhead)
	if budget := r.d.s.opts.ProjectionMemoryBudget; budget > 0 && !r.makeRoom(cost, budget) {
		return r.faultAt(ev, &stepError{kind: FaultMemoryBudget, msg: fmt.Sprintf(
			"the declarative projections' states would take more than the memory budget of %d bytes, with every state that can be evicted evicted", budget)})
	}
	r.d.used.Add(cost)
	r.memory.Add(cost)
	r.latest[key] = next
	r.mu.Lock()
	tl := r.parts.record(key, ev.Position, encoded)
	r.changes = append(r.changes, change{pos: ev.Position, tl: tl, index: len(tl.states) - 1})
	if r.caughtUp.Load() { // the build's are saved by sweep
		r.offerKept(tl, len(tl.states)-1, encoded)
	}
	r.mu.Unlock()
	r.folded.Add(1)
	r.stateBytes.Add(int64(len(encoded)))
	r.advance(ev.Position)
	return nil
}

func (r *runner) faultAt(ev *eventstore.Event, f *stepError) *Fault {
	return &Fault{Projection: r.info.Name, DefinitionVersion: r.info.Version, Kind: f.kind, Message: f.msg,
		Position: ev.Position, StreamID: ev.StreamID, EventType: ev.Type, EventVersion: ev.Version}
}

func (r *runner) partitionCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.parts.created)
}

// status fills the dynamic part of the version's description.
func (r *runner) status(st ProjectionStatus) DefinitionVersion {
	v := r.info
	v.Status = st
	v.Checkpoint = r.checkpoint.Load()
	r.mu.RLock()
	v.Partitions, v.States, v.EvictedStates = len(r.parts.created), r.parts.states, r.evictedStates
	v.RestoredFrom, v.SnapshotsUpTo, v.SnapshotsRead = r.resumeTo.Load(), r.marked.Load(), r.keptRead.Load()
	if r.retired {
		v.Partitions, v.States = r.retiredCounts[0], r.retiredCounts[1]
	}
	r.mu.RUnlock()
	v.StateBytes = r.stateBytes.Load()
	v.Refolds, v.RestoredEvents, v.RefilledStates = r.refolds.Load(), r.restored.Load(), r.refilled.Load()
	if f := r.fault.Load(); f != nil {
		v.Status, v.Fault = StatusFaulted, f
	}
	v.Progress = 1
	if !r.caughtUp.Load() {
		if t := r.target.Load(); t > 0 {
			v.Progress = min(1, float64(v.Checkpoint)/float64(t))
		} else {
			v.Progress = 0
		}
	}
	return v
}

// changesAfter returns the states recorded after position after and at or
// before the checkpoint, at most limit, for key ("" = every partition).
func (r *runner) changesAfter(after int64, key string, limit int) []change {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if key != "" {
		tl := r.parts.byKey[key]
		if tl == nil {
			return nil
		}
		i := sort.Search(len(tl.states), func(i int) bool { return tl.states[i].from > after })
		var out []change
		for ; i < len(tl.states) && len(out) < limit; i++ {
			out = append(out, change{pos: tl.states[i].from, tl: tl, index: i})
		}
		return out
	}
	i := sort.Search(len(r.changes), func(i int) bool { return r.changes[i].pos > after })
	end := min(len(r.changes), i+limit)
	return append([]change(nil), r.changes[i:end]...)
}
