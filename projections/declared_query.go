package projections

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/itchyny/gojq"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Queries of declarative projections. Each takes the answering runner once
// (Declarative.current) and reads only from it, so an answer never mixes two
// versions of a definition, even while one replaces the other.

// allowAll reports whether scope may read every partition of the runner's
// projection; allowKey whether it may read the partition key.
func allowAll(scope Scope, def Definition) bool {
	return scope == nil || scope.AllowsAllWithPrefix(def.StreamPrefix)
}

func allowKey(scope Scope, def Definition, key string) bool {
	return allowAll(scope, def) || (def.StreamKeyed() && scope.Allows(key))
}

func forbidden(def Definition) error {
	if def.StreamKeyed() {
		return fmt.Errorf("%w: the partition's stream is not one the caller may read", ErrForbidden)
	}
	return fmt.Errorf("%w: projection %q is partitioned by a jq expression, so its partitions mix streams; reading them needs access to every %q stream",
		ErrForbidden, def.Name, def.StreamPrefix)
}

// State returns a partition's state at the point: a time or position of the
// log, or the partition's own version (its n-th event). A partition that did
// not exist then is ErrNotFound.
func (d *Declarative) State(ctx context.Context, name, key string, at eventstore.At, scope Scope) (PartitionState, error) {
	r, err := d.current(name)
	if err != nil {
		return PartitionState{}, err
	}
	def := r.prog.def
	if !allowKey(scope, def, key) {
		return PartitionState{}, forbidden(def)
	}
	version, byVersion := at.Version()
	if byVersion {
		if version < 0 {
			return PartitionState{}, invalidInput("version must not be negative, got %d", version)
		}
		at = eventstore.Now()
	}
	pos, _, err := d.s.pointOn(ctx, at, r, fmt.Sprintf("projection %q", name))
	if err != nil {
		return PartitionState{}, err
	}
	r.mu.RLock()
	tl := r.parts.byKey[key]
	var (
		state json.RawMessage
		i     int
		ok    bool
	)
	if tl != nil {
		state, i, ok = tl.at(pos)
		if ok && byVersion {
			// The n-th event's state; a version beyond the partition's is
			// its latest state, as for streams.
			i = int(min(version, int64(i+1))) - 1
			ok = i >= 0
			if ok {
				state = tl.states[i].state
			}
		}
	}
	var from int64
	if ok {
		from = tl.states[i].from
		state, err = r.stateAt(ctx, tl, i)
	}
	r.mu.RUnlock()
	if err != nil {
		return PartitionState{}, err
	}
	if !ok {
		return PartitionState{}, fmt.Errorf("%w: projection %q has no partition %q at that point", ErrNotFound, name, key)
	}
	return d.partitionState(r, key, int64(i+1), from, state), nil
}

func (d *Declarative) partitionState(r *runner, key string, version, from int64, state json.RawMessage) PartitionState {
	t, _ := d.s.store.RecordedAt(from)
	return PartitionState{Projection: r.info.Name, DefinitionVersion: r.info.Version, Key: key,
		Version: version, Position: from, RecordedAt: t, State: state}
}

// Partitions lists a projection's partitions as they were at a point, in the
// order they were created (then key), which never changes, so cursors stay
// valid at every point in time. Partitions keyed by stream that the scope
// may not read are left out; a projection keyed by jq needs the whole scope
// (ErrForbidden).
func (d *Declarative) Partitions(ctx context.Context, q ListPartitions) (PartitionPage, error) {
	if q.First < 1 || q.First > MaxOrdersPage {
		return PartitionPage{}, invalidInput("first must be between 1 and %d, got %d", MaxOrdersPage, q.First)
	}
	var after *cursorKey
	if q.After != "" {
		k, err := decodeCursor(q.After)
		if err != nil {
			return PartitionPage{}, err
		}
		after = &k
	}
	r, pos, match, err := d.listing(ctx, q.Name, q.At, q.Filter, q.Scope)
	if err != nil {
		return PartitionPage{}, err
	}
	defer match.cancel()
	r.mu.RLock()
	found, total, hasNext := r.parts.listAt(pos, match.keep, after, q.First, q.Count)
	bytes := 0
	for i := range found {
		if match.err == nil && found[i].state == nil { // evicted
			found[i].state, match.err = r.stateAt(ctx, found[i].tl, found[i].index)
		}
		// A page stops at eventstore.MaxPageBytes of states, as a page of
		// events does: 1,000 states at the 64 KiB default limit are 64 MiB.
		if bytes += len(found[i].state); bytes > eventstore.MaxPageBytes && i > 0 {
			found, hasNext = found[:i], true
			break
		}
	}
	r.mu.RUnlock()
	if match.err != nil {
		return PartitionPage{}, match.err
	}
	page := PartitionPage{Partitions: make([]PartitionState, 0, len(found)), Cursors: make([]string, 0, len(found)),
		TotalCount: total, HasNext: hasNext, Position: pos, DefinitionVersion: r.info.Version}
	for _, f := range found {
		page.Partitions = append(page.Partitions, d.partitionState(r, f.tl.key, int64(f.index+1), f.from, f.state))
		page.Cursors = append(page.Cursors, f.key.encode())
	}
	if n := len(page.Cursors); n > 0 {
		page.EndCursor = page.Cursors[n-1]
	}
	return page, nil
}

// Count returns how many partitions existed at the point and pass the
// filter ("" = all), among those the scope may read.
func (d *Declarative) Count(ctx context.Context, name string, at eventstore.At, filter string, scope Scope) (int, error) {
	r, pos, match, err := d.listing(ctx, name, at, filter, scope)
	if err != nil {
		return 0, err
	}
	defer match.cancel()
	r.mu.RLock()
	_, total, _ := r.parts.listAt(pos, match.keep, nil, 0, true)
	r.mu.RUnlock()
	return total, match.err
}

// listing resolves what a list or a count reads: the runner, the position
// and the partitions to keep.
func (d *Declarative) listing(ctx context.Context, name string, at eventstore.At, filter string, scope Scope) (*runner, int64, *matcher, error) {
	r, err := d.current(name)
	if err != nil {
		return nil, 0, nil, err
	}
	def := r.prog.def
	whole := allowAll(scope, def)
	if !whole && !def.StreamKeyed() {
		return nil, 0, nil, forbidden(def)
	}
	m := &matcher{r: r}
	if !whole {
		m.scope = scope
	}
	if filter != "" {
		if len(filter) > MaxFilterLength {
			return nil, 0, nil, invalidInput("the filter is %d bytes; at most %d are allowed", len(filter), MaxFilterLength)
		}
		if m.filter, err = compileJQ("the filter", filter); err != nil {
			return nil, 0, nil, err
		}
	}
	pos, _, err := d.s.pointOn(ctx, at, r, fmt.Sprintf("projection %q", name))
	if err != nil {
		return nil, 0, nil, err
	}
	m.ctx, m.cancel = context.WithTimeout(ctx, MaxFilterTime)
	m.pos = pos
	return r, pos, m, nil
}

// matcher decides which partitions a list keeps: those the scope allows
// (nil = all) whose state passes the jq filter (nil = all). The first
// filter error is kept and fails the query.
type matcher struct {
	r      *runner // its mu is held for reading while keep runs
	pos    int64
	scope  Scope
	filter *gojq.Code
	err    error
	ctx    context.Context // the query's, with MaxFilterTime for all filter runs
	cancel context.CancelFunc
}

func (m *matcher) keep(key string, state json.RawMessage) bool {
	if m.err != nil || (m.scope != nil && !m.scope.Allows(key)) {
		return false
	}
	if m.filter == nil {
		return true
	}
	if state == nil { // evicted: the filter needs it
		tl := m.r.parts.byKey[key]
		_, i, _ := tl.at(m.pos)
		if state, m.err = m.r.stateAt(m.ctx, tl, i); m.err != nil {
			return false
		}
	}
	// The filter's first value decides, as in jq's select; no value is false.
	v, ok := m.filter.RunWithContext(m.ctx, jqDecode(state)).Next()
	if err, isErr := v.(error); ok && isErr {
		if m.ctx.Err() != nil {
			m.err = invalidInput("the filter took longer than %v over the partitions", MaxFilterTime)
		} else {
			m.err = invalidInput("the filter failed on partition %q: %s", key, err)
		}
		return false
	}
	return ok && v != nil && v != false
}
