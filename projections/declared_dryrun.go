package projections

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// dryRun folds the most recent matching events (at most DryRunEvents, among
// the last DryRunScan positions), each partition from the initial state,
// through one reducer stream. A fault refuses the definition, naming the
// event.
func (d *Declarative) dryRun(ctx context.Context, prog *program) (DryRun, error) {
	recent, err := d.recentMatching(ctx, prog)
	if err != nil {
		return DryRun{}, err
	}
	f := &dryFold{prog: prog, keys: newPartitioner(prog), recent: recent,
		states: map[string]any{}, encoded: map[string]json.RawMessage{}, versions: map[string]*eventstore.Event{}, last: map[string]int64{}}
	if err := prog.fold(f); err != nil {
		return DryRun{}, invalidInput("the reducer does not compile: %s", err)
	}
	if f.err != nil {
		return DryRun{}, f.err
	}
	keys := make([]string, 0, len(f.states))
	for k := range f.states {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys[:min(len(keys), DryRunSample)] {
		ev := f.versions[k]
		f.out.Partitions = append(f.out.Partitions, PartitionState{Projection: prog.def.Name, Key: k,
			Version: f.last[k], Position: ev.Position, RecordedAt: ev.RecordedAt, State: f.encoded[k]})
	}
	return f.out, nil
}

// recentMatching reads the most recent matching events the dry run folds.
func (d *Declarative) recentMatching(ctx context.Context, prog *program) ([]eventstore.Event, error) {
	store := d.s.store
	opts := eventstore.ReadAllOptions{After: max(0, store.HeadPosition()-DryRunScan),
		StreamPrefix: prog.def.StreamPrefix, Types: prog.def.EventTypes, Limit: eventstore.MaxReadLimit}
	var recent []eventstore.Event
	for {
		page, err := store.ReadAll(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, ev := range page {
			if prog.def.matches(&ev) {
				recent = append(recent, ev)
			}
		}
		if len(recent) > DryRunEvents {
			recent = append(recent[:0], recent[len(recent)-DryRunEvents:]...)
		}
		if len(page) == 0 { // a short page is not the end: pages are bounded by bytes too
			return recent, nil
		}
		opts.After = page[len(page)-1].Position
	}
}

// dryFold is the dry run's reduction: the events in order, each partition
// from the initial state, with the runner's partition rule.
type dryFold struct {
	prog   *program
	keys   partitioner
	recent []eventstore.Event
	next   int // of recent

	ev  *eventstore.Event // the event being reduced
	key string            // its partition

	states   map[string]any
	encoded  map[string]json.RawMessage
	versions map[string]*eventstore.Event // each partition's last event
	last     map[string]int64             // each partition's version in the dry run
	out      DryRun
	err      error // the fault that refused the definition
}

func (f *dryFold) input() (any, bool) {
	for f.next < len(f.recent) {
		ev := &f.recent[f.next]
		f.next++
		event := eventValue(ev)
		key, sf := f.keys.key(ev, event)
		if sf != nil {
			f.fail(ev, sf)
			return nil, false
		}
		if key == "" {
			continue
		}
		prev, ok := f.states[key]
		if !ok {
			prev = f.prog.initial
		}
		f.ev, f.key = ev, key
		return reducerInput(prev, event), true
	}
	return nil, false
}

func (f *dryFold) result(next any, encoded json.RawMessage, sf *stepError) bool {
	if sf != nil {
		f.fail(f.ev, sf)
		return false
	}
	ev, key := f.ev, f.key
	f.states[key], f.encoded[key], f.versions[key] = next, encoded, ev
	f.last[key]++
	if f.out.FromPosition == 0 {
		f.out.FromPosition = ev.Position
	}
	f.out.ToPosition = ev.Position
	f.out.Events++
	return true
}

func (f *dryFold) fail(ev *eventstore.Event, sf *stepError) {
	f.err = invalidInput("the dry run on the most recent matching events failed at position %d (stream %q, event %s, version %d): %s: %s",
		ev.Position, ev.StreamID, ev.Type, ev.Version, sf.kind, sf.msg)
}
