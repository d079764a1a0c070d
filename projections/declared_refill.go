package projections

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// refill folds, in the background, the states a restart restored without
// folding (declared_resume.go), and puts their JSON back in memory while the
// budget allows. A restored version answers at once, but each read of a
// restored state folds up to SnapshotEvery events, which a page of 50
// partitions pays 50 times; once refilled, reads are binary searches again.
// It reads the log once, in position order, and folds only the events of
// states still without JSON, through one reducer stream; states folded
// meanwhile by a read or by the runner are taken as they are.
//
// A fault stops the refill there and is logged; the runner goes on, and a
// read of a state the refill did not reach folds it itself (and fails with
// the same fault, as a *FaultError naming the event).
func (r *runner) refill(ctx context.Context, upTo int64) {
	r.mu.RLock()
	n := len(r.changes)
	r.mu.RUnlock()
	f := &refillFold{r: r, ctx: ctx, upTo: upTo, changes: n, values: map[*timeline[json.RawMessage]]any{}}
	start := time.Now()
	log := r.d.s.log.With("projection", r.info.Name, "definitionVersion", r.info.Version)
	if err := r.prog.fold(f); err != nil {
		log.Warn("cannot refill restored states: the reducer does not compile", "err", err)
		return
	}
	if f.fault != nil {
		log.Warn("the refill of restored states stopped at a fault; reads of the states after it fold them when asked",
			"position", f.fault.Position, "stream", f.fault.StreamID, "type", f.fault.EventType, "kind", f.fault.Kind,
			"err", f.fault.Message, "refilled", r.refilled.Load())
		return
	}
	if f.full {
		log.Info("the refill of restored states stopped at the memory budget; reads fold the others when asked",
			"refilled", r.refilled.Load(), "took", time.Since(start).Round(time.Millisecond))
		return
	}
	log.Info("refilled restored states", "states", r.refilled.Load(), "took", time.Since(start).Round(time.Millisecond))
}

// refillFold is the refill's reduction: the runner's changes up to upTo in
// order, matched with the log's events, handing out those without JSON.
type refillFold struct {
	r       *runner
	ctx     context.Context
	upTo    int64
	changes int // how many of r.changes to visit
	next    int // the next of them

	// values holds each partition's state before its next change, as a jq value.
	values map[*timeline[json.RawMessage]]any
	page   []eventstore.Event // of the log
	e      int                // the event of page at or before the next change
	c      change             // the change being folded
	fault  *Fault
	full   bool // the budget stopped it
}

func (f *refillFold) input() (any, bool) {
	r := f.r
	for f.next < f.changes && f.ctx.Err() == nil {
		if f.e >= len(f.page) {
			after := int64(0)
			if len(f.page) > 0 {
				after = f.page[len(f.page)-1].Position
			}
			page, err := r.d.s.store.ReadAll(f.ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
			if err != nil || len(page) == 0 {
				return nil, false
			}
			f.page, f.e = page, 0
		}
		r.mu.RLock()
		if r.retired { // its states are gone
			r.mu.RUnlock()
			return nil, false
		}
		c := r.changes[f.next]
		have := c.tl.states[c.index].state
		r.mu.RUnlock()
		switch ev := &f.page[f.e]; {
		case c.pos > f.upTo:
			return nil, false
		case ev.Position < c.pos:
			f.e++
			continue
		case ev.Position > c.pos: // cannot happen: every change is an event
			return nil, false
		}
		f.next++
		if have != nil {
			f.values[c.tl] = jqDecode(have)
			continue
		}
		prev, ok := f.values[c.tl]
		if !ok {
			prev = r.prog.initial
			if c.index > 0 { // the partition's earlier states were not all refilled
				r.mu.RLock()
				s, err := r.stateAt(f.ctx, c.tl, c.index-1)
				r.mu.RUnlock()
				if err != nil {
					return nil, false
				}
				prev = jqDecode(s)
			}
		}
		f.c = c
		return reducerInput(prev, eventValue(&f.page[f.e])), true
	}
	return nil, false
}

func (f *refillFold) result(next any, encoded json.RawMessage, sf *stepError) bool {
	r, c := f.r, f.c
	if sf != nil {
		f.fault = r.faultAt(&f.page[f.e], sf)
		return false
	}
	f.values[c.tl] = next
	size := int64(len(encoded))
	if budget := r.d.s.opts.ProjectionMemoryBudget; budget > 0 && r.d.used.Load()+size > budget {
		f.full = true // the rest stays folded on demand
		return false
	}
	r.mu.Lock()
	if r.retired {
		r.mu.Unlock()
		return false
	}
	if c.tl.states[c.index].state == nil {
		c.tl.states[c.index].state = encoded
		r.d.used.Add(size)
		r.memory.Add(size)
		r.stateBytes.Add(size)
	}
	r.mu.Unlock()
	r.refilled.Add(1)
	f.e++
	return true
}
