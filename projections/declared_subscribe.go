package projections

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// PartitionSubscription delivers a declarative projection's partition states
// as they are recorded, in position order, exactly once.
type PartitionSubscription interface {
	Recv(ctx context.Context) (PartitionState, error)
	Lag() int64
	Close()
}

// Subscribe delivers the states recorded after position afterPosition (nil
// = live from the log's head now) for one partition (key) or, with key "",
// for every partition the scope may read.
//
// The subscription is a cursor (a position) over the states the answering
// runner has recorded, read under its lock, then a wait for its checkpoint
// to move: catch-up and live are one loop over one position-ordered list, so
// nothing is lost or repeated (guarantee 5), and a slow reader only lags its
// cursor. When a new definition version takes over, the subscription goes on
// from the same position with the new version's states (each carries its
// DefinitionVersion). A fault ends it with a *FaultError once everything
// before the fault has been delivered.
func (d *Declarative) Subscribe(ctx context.Context, name, key string, afterPosition *int64, scope Scope) (PartitionSubscription, error) {
	r, err := d.current(name)
	if err != nil {
		return nil, err
	}
	if err := subscribeAllowed(scope, r.prog.def, key); err != nil {
		return nil, err
	}
	cursor := d.s.store.HeadPosition()
	if afterPosition != nil {
		if *afterPosition < 0 {
			return nil, invalidInput("afterPosition must not be negative, got %d", *afterPosition)
		}
		cursor = *afterPosition
	}
	sub := &partitionSub{d: d, name: name, key: key, scope: scope, cursor: cursor, closed: make(chan struct{})}
	sub.lagAt.Store(cursor)
	return sub, nil
}

func subscribeAllowed(scope Scope, def Definition, key string) error {
	if key != "" && !allowKey(scope, def, key) || key == "" && !def.StreamKeyed() && !allowAll(scope, def) {
		return forbidden(def)
	}
	return nil
}

type partitionSub struct {
	d     *Declarative
	name  string
	key   string
	scope Scope

	mu      sync.Mutex
	cursor  int64        // every state recorded up to here has been delivered or passed over
	lagAt   atomic.Int64 // cursor, for Lag while Recv waits
	pending []PartitionState
	closed  chan struct{}
	once    sync.Once
}

// subscribeBatch bounds the states taken from a runner at once.
const subscribeBatch = 256

func (p *partitionSub) Recv(ctx context.Context) (PartitionState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if len(p.pending) > 0 {
			next := p.pending[0]
			p.pending = p.pending[1:]
			return next, nil
		}
		select {
		case <-p.closed:
			return PartitionState{}, eventstore.ErrClosed
		default:
		}
		switched := p.d.switched.wait()
		r, err := p.d.current(p.name)
		if err != nil {
			return PartitionState{}, err
		}
		def := r.prog.def
		if err := subscribeAllowed(p.scope, def, p.key); err != nil {
			return PartitionState{}, err // a new version may read other streams
		}
		moved := r.wait()
		changes := r.changesAfter(p.cursor, p.key, subscribeBatch)
		whole := allowAll(p.scope, def)
		for _, c := range changes {
			if !whole && !p.scope.Allows(c.tl.key) {
				p.cursor = c.pos
				p.lagAt.Store(c.pos)
				continue
			}
			r.mu.RLock()
			state, err := r.stateAt(ctx, c.tl, c.index) // evicted states are folded again
			r.mu.RUnlock()
			if err != nil {
				return PartitionState{}, err // the cursor stays before it: a retry gets it
			}
			p.cursor = c.pos
			p.lagAt.Store(c.pos)
			p.pending = append(p.pending, p.d.partitionState(r, c.tl.key, int64(c.index+1), c.pos, state))
		}
		if len(changes) > 0 {
			continue
		}
		if f := r.fault.Load(); f != nil {
			return PartitionState{}, &FaultError{Fault: *f}
		}
		select {
		case <-moved:
		case <-switched:
		case <-r.faulted:
		case <-p.closed:
		case <-ctx.Done():
			return PartitionState{}, ctx.Err()
		}
	}
}

// Lag returns how many positions the subscription is behind the log's head.
func (p *partitionSub) Lag() int64 {
	return max(0, p.d.s.store.HeadPosition()-p.lagAt.Load())
}

// Close ends the subscription; it is safe to call more than once.
func (p *partitionSub) Close() { p.once.Do(func() { close(p.closed) }) }
