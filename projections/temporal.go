package projections

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
)

// The temporal read model, shared by the order read model (readmodel.go) and
// the declarative projections (declared_*.go). Every partition (an order, a
// jq projection's partition) keeps each state it has had with the position
// from which it is valid; a state is valid until the position of the
// partition's next state. "The partitions as they were at position P" is then
// one binary search per partition instead of a replay of the log, and the
// state at the partition's n-th event is an index.

// stamped is a partition's state valid from position from on, up to (not
// including) the next state's from.
type stamped[S any] struct {
	from  int64
	state S
}

// timeline is every state one partition has had, by position.
type timeline[S any] struct {
	key       string       // the partition's key (an order's id, a projection's partition key)
	createdAt int64        // position of its first state
	states    []stamped[S] // by position; states[n-1] is the state after its n-th event
	thinned   int          // states before this index were visited by eviction (declared_evict.go)
}

// at returns the state valid at position p and its index in states, if the
// partition existed then.
func (tl *timeline[S]) at(p int64) (S, int, bool) {
	i := sort.Search(len(tl.states), func(i int) bool { return tl.states[i].from > p })
	if i == 0 {
		var zero S
		return zero, -1, false
	}
	return tl.states[i-1].state, i - 1, true
}

// partitionSet holds timelines by key and in the order they were created.
// Callers synchronize access.
type partitionSet[S any] struct {
	byKey   map[string]*timeline[S]
	created []*timeline[S] // by createdAt (appended in that order)
	states  int            // states held, all timelines together
}

func newPartitionSet[S any]() partitionSet[S] {
	return partitionSet[S]{byKey: map[string]*timeline[S]{}}
}

// record appends the partition's state valid from position pos on, creating
// the partition at its first state. Positions must not decrease.
func (ps *partitionSet[S]) record(key string, pos int64, state S) *timeline[S] {
	tl := ps.byKey[key]
	if tl == nil {
		tl = &timeline[S]{key: key, createdAt: pos}
		ps.byKey[key] = tl
		ps.created = append(ps.created, tl)
	}
	tl.states = append(tl.states, stamped[S]{from: pos, state: state})
	ps.states++
	return tl
}

// partitionAt is one partition in a list at a point.
type partitionAt[S any] struct {
	tl    *timeline[S]
	index int   // into tl.states: the partition's version is index+1
	from  int64 // the state's position (read under the caller's lock)
	state S
	key   cursorKey
}

// listAt returns the partitions that existed at p and match (nil = all), in
// cursor-key order (creation position, then key): the first `first` after
// `after` (nil = from the start) and whether more follow. With count it also
// returns how many match in all, which visits every partition; without it
// the scan stops once the page is full and one more match is found.
func (ps *partitionSet[S]) listAt(p int64, match func(key string, s S) bool, after *cursorKey, first int, count bool) (page []partitionAt[S], total int, hasNext bool) {
	n := sort.Search(len(ps.created), func(i int) bool { return ps.created[i].createdAt > p })
	start := 0
	if after != nil && !count {
		// Cursor keys grow along created: skip straight past the cursor.
		start = sort.Search(n, func(i int) bool {
			return after.less(cursorKey{position: ps.created[i].createdAt, id: ps.created[i].key})
		})
	}
	for _, tl := range ps.created[start:n] {
		s, i, ok := tl.at(p)
		if !ok || (match != nil && !match(tl.key, s)) {
			continue
		}
		total++
		k := cursorKey{position: tl.createdAt, id: tl.key}
		if after != nil && !after.less(k) {
			continue
		}
		if len(page) == first {
			hasNext = true
			if !count {
				break
			}
			continue
		}
		page = append(page, partitionAt[S]{tl: tl, index: i, from: tl.states[i].from, state: s, key: k})
	}
	return page, total, hasNext
}

// watermark is a read model's checkpoint: every event of the log up to it is
// in the model and nothing after it is. Readers wait for it to reach the
// position they ask for (guarantee 8).
type watermark struct {
	checkpoint atomic.Int64
	mu         sync.Mutex
	changed    chan struct{} // closed and replaced when the checkpoint advances
}

// advance moves the checkpoint to pos and wakes the waiters.
func (w *watermark) advance(pos int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkpoint.Store(pos)
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// position returns the checkpoint.
func (w *watermark) position() int64 { return w.checkpoint.Load() }

// wait returns a channel closed once the checkpoint moves on.
func (w *watermark) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	return w.changed
}

// waitFor blocks until the checkpoint reaches p or ctx ends.
func (w *watermark) waitFor(ctx context.Context, p int64) error {
	for {
		ch := w.wait()
		if w.checkpoint.Load() >= p {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
