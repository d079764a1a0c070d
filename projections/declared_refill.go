package projections

import (
	"context"
	"encoding/json"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// refill folds, in the background, the states a restart restored without
// folding (declared_resume.go), and puts their JSON back in memory while the
// budget allows. A restored version answers at once, but each read of a
// restored state folds up to SnapshotEvery events, which a page of 50
// partitions pays 50 times; once refilled, reads are binary searches again.
// It reads the log once, in position order, and folds only the events of
// states still without JSON; states folded meanwhile by a read or by the
// runner are taken as they are.
func (r *runner) refill(ctx context.Context, upTo int64) {
	r.mu.RLock()
	n := len(r.changes)
	r.mu.RUnlock()
	values := map[*timeline[json.RawMessage]]any{} // each partition's state before the next change, as a jq value
	budget := r.d.s.opts.ProjectionMemoryBudget
	after := int64(0)
	for i := 0; i < n && ctx.Err() == nil; {
		page, err := r.d.s.store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil || len(page) == 0 {
			return
		}
		after = page[len(page)-1].Position
		for e := 0; e < len(page) && i < n; {
			r.mu.RLock()
			if r.retired { // its states are gone
				r.mu.RUnlock()
				return
			}
			c := r.changes[i]
			have := c.tl.states[c.index].state
			r.mu.RUnlock()
			if c.pos > upTo {
				return
			}
			if page[e].Position < c.pos {
				e++
				continue
			}
			if page[e].Position > c.pos { // cannot happen: every change is an event
				return
			}
			i++
			if have != nil {
				values[c.tl] = jqDecode(have)
				continue
			}
			prev, ok := values[c.tl]
			if !ok {
				prev = r.prog.initial
				if c.index > 0 { // the partition's earlier states were not all refilled
					r.mu.RLock()
					s, err := r.stateAt(ctx, c.tl, c.index-1)
					r.mu.RUnlock()
					if err != nil {
						return
					}
					prev = jqDecode(s)
				}
			}
			next, encoded, f := r.prog.reduce(prev, eventValue(&page[e]))
			if f != nil {
				return
			}
			values[c.tl] = next
			size := int64(len(encoded))
			if budget > 0 && r.d.used.Load()+size > budget {
				return // the rest stays folded on demand
			}
			r.mu.Lock()
			if r.retired {
				r.mu.Unlock()
				return
			}
			if c.tl.states[c.index].state == nil {
				c.tl.states[c.index].state = encoded
				r.d.used.Add(size)
				r.memory.Add(size)
				r.stateBytes.Add(size)
			}
			r.mu.Unlock()
			r.refilled.Add(1)
			e++
		}
	}
}
