package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Eviction under the memory budget. A declarative projection keeps every
// state each partition has had, so its memory grows with the log. When the
// next state would pass Options.ProjectionMemoryBudget, the runner first
// drops the JSON of old states instead of faulting: it visits partitions
// round robin in creation order, so the ones it reaches are, on a long
// log, mostly cold ones, and it drops every state of a partition except
// its latest one (the next reduction and most reads start there) and every
// K-th (K = Options.SnapshotEvery), which are the partition's snapshots.
// Positions stay, so "which state at position P" is still one binary
// search; only the state's JSON is gone, and stateAt folds it again from
// the nearest kept state before it: at most K events, read back from the
// eventstore by position (its memory image, or an indexed store read for
// events it evicted itself). Eviction frees an eighth of the budget more
// than it needs, so it does not run again at the very next event. Only when
// nothing more can be dropped does the version fault with MEMORY_BUDGET.
//
// The refold assumes what the README asks of reducers: the same state and
// event give the same next state.

// evictSlack is the share of the budget an eviction frees beyond what the
// next state needs.
const evictSlack = 8

// makeRoom drops old states until cost more bytes fit in the budget, or
// nothing more can be dropped; it reports whether they fit. Only the
// runner's goroutine calls it. The budget is shared by every version, so
// when this runner's own states do not free enough, the others' are
// evicted too: otherwise a version built later than another would fault
// while the other holds states it could give up. No two runners' locks are
// ever held together.
func (r *runner) makeRoom(cost, budget int64) bool {
	over := r.d.used.Load() + cost - budget
	if over <= 0 {
		return true
	}
	need := over + budget/evictSlack
	if need -= r.evict(need); need > 0 {
		for _, other := range r.d.runners() {
			if other == r {
				continue
			}
			if need -= other.evict(need); need <= 0 {
				break
			}
		}
	}
	return r.d.used.Load()+cost <= budget
}

// evict drops up to about need bytes of this runner's states and returns
// what it freed.
func (r *runner) evict(need int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock() // retire gives memory back under mu: count under it too
	freed := r.evictLocked(need)
	r.d.used.Add(-freed)
	r.memory.Add(-freed)
	r.stateBytes.Add(-freed)
	r.evictedBytes.Add(freed)
	return freed
}

// runners returns every runner that holds states: the answering and the
// building version of each projection.
func (d *Declarative) runners() []*runner {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []*runner
	for _, p := range d.byName {
		for _, r := range []*runner{p.active, p.building} {
			if r != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// evictLocked drops the JSON of states that are neither a partition's
// latest nor one of its every-K-th, visiting partitions from the hand on,
// until need bytes are freed or every partition was visited once. r.mu is
// held for writing.
func (r *runner) evictLocked(need int64) int64 {
	k := r.d.s.opts.SnapshotEvery
	var freed int64
	n := len(r.parts.created)
	for visited := 0; visited < n && freed < need; visited++ {
		if r.hand >= n {
			r.hand = 0
		}
		tl := r.parts.created[r.hand]
		r.hand++
		last := len(tl.states) - 1
		for i := tl.thinned; i < last; i++ {
			if (i+1)%k != 0 && tl.states[i].state != nil {
				freed += int64(len(tl.states[i].state))
				tl.states[i].state = nil
				r.evictedStates++
			}
		}
		tl.thinned = max(tl.thinned, last)
	}
	return freed
}

// stateAt returns the i-th state of tl, folding it again when it was
// evicted: from the nearest state before it that is kept (or the initial
// state), over the partition's events after it, which are read by their
// positions, through one reducer stream (refold). r.mu is held for reading:
// the runner only appends states and drops JSON, and neither touches the
// states this reads. A fault of the reducer on the way is a *FaultError
// naming the event, wrapped: this read fails, the runner goes on.
func (r *runner) stateAt(ctx context.Context, tl *timeline[json.RawMessage], i int) (json.RawMessage, error) {
	if s := tl.states[i].state; s != nil {
		return s, nil
	}
	if r.isKept(i) { // restored: its own snapshot, with no fold
		if s, ok := r.loadKept(ctx, tl, i); ok {
			return s, nil
		}
	}
	k := i - 1
	start := json.RawMessage(nil)
	for ; k >= 0; k-- {
		if start = tl.states[k].state; start != nil {
			break
		}
		if r.isKept(k) { // not in memory after a restart: its snapshot
			var ok bool
			if start, ok = r.loadKept(ctx, tl, k); ok {
				break
			}
		}
	}
	f := &refold{r: r, ctx: ctx, tl: tl, next: k + 1, last: i, state: r.prog.initial}
	if k >= 0 {
		f.state = jqDecode(start)
	}
	if err := r.prog.fold(f); err != nil {
		return nil, fmt.Errorf("projections: the reducer of projection %q does not compile: %w", r.info.Name, err)
	}
	if f.err != nil {
		return nil, f.err
	}
	r.refolds.Add(1)
	return f.out, nil
}

// refold is stateAt's reduction: the partition's states next..last folded
// again from state, their events read ahead by position.
type refold struct {
	r          *runner
	ctx        context.Context
	tl         *timeline[json.RawMessage]
	next, last int // the states to fold again
	state      any
	out        json.RawMessage
	ev         eventstore.Event   // the event being reduced
	ahead      []eventstore.Event // read, not yet reduced
	err        error
}

func (f *refold) input() (any, bool) {
	if f.next > f.last {
		return nil, false
	}
	if f.ev, f.err = f.event(f.tl.states[f.next].from); f.err != nil {
		return nil, false
	}
	return reducerInput(f.state, eventValue(&f.ev)), true
}

func (f *refold) result(next any, encoded json.RawMessage, sf *stepError) bool {
	if sf != nil {
		// The same reducer folded this event before: only a time-out, a
		// limit lowered since, or a reducer that is not a function of
		// its input (now) fails it now.
		fault := f.r.faultAt(&f.ev, sf)
		f.r.d.s.log.Warn("folding an evicted state of a declarative projection again failed; the read fails",
			"projection", f.r.info.Name, "definitionVersion", f.r.info.Version, "partition", f.tl.key,
			"position", fault.Position, "kind", fault.Kind, "err", fault.Message)
		f.err = fmt.Errorf("projections: folding partition %q of projection %q again at position %d: %w",
			f.tl.key, f.r.info.Name, f.ev.Position, &FaultError{Fault: *fault})
		return false
	}
	f.state, f.out = next, encoded
	if f.tl.states[f.next].state == nil {
		f.r.offerKept(f.tl, f.next, encoded) // its snapshot was missing
	}
	f.next++
	return true
}

// refoldDense is how far apart, on average, the events still to fold may
// be for one read to bring them all: a partition's events are often
// adjacent in the log (one append), and then one read serves them all;
// where they are spread out, a read of everything between them could cost
// more than the reads it saves, so each is read alone. This bounds what a
// read ahead reads for nothing to one event per event folded.
const refoldDense = 2

// event returns the event at position pos, from the events read ahead or
// else from one read of the log: of all the events still to fold when they
// are dense (refoldDense), of this one alone otherwise.
func (f *refold) event(pos int64) (eventstore.Event, error) {
	for len(f.ahead) > 0 && f.ahead[0].Position < pos {
		f.ahead = f.ahead[1:]
	}
	if len(f.ahead) == 0 || f.ahead[0].Position != pos {
		limit := 1
		if span := f.tl.states[f.last].from - pos + 1; span <= int64(refoldDense*(f.last-f.next+1)) {
			limit = int(min(span, int64(eventstore.MaxReadLimit)))
		}
		page, err := f.r.d.s.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: pos - 1, Limit: limit})
		if err != nil {
			return eventstore.Event{}, err
		}
		if len(page) == 0 || page[0].Position != pos {
			return eventstore.Event{}, fmt.Errorf("projections: the event at position %d is not in the log", pos)
		}
		f.ahead = page
	}
	ev := f.ahead[0]
	f.ahead = f.ahead[1:]
	return ev, nil
}
