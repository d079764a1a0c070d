package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Projection folds the events of one stream into a state of type S.
//
// Apply must be a pure, total function: it must accept any event, including
// ones of unknown types or with unexpected data (the generic appendToStream
// can write anything to any stream), and it must not modify the state it is
// given (states are shared by the cache, the read model and snapshots being
// written). It returns the new state.
//
// The state must survive a round trip through encoding/json, because
// snapshots store it as JSON; a projection whose state does not can
// implement StateCodec.
type Projection[S any] interface {
	// Name identifies the projection in snapshots and checkpoints.
	Name() string
	// SchemaVersion changes whenever Apply or the state's shape changes.
	// Snapshots made under another schema version are never used.
	SchemaVersion() int
	// Initial is the state before the stream's first event.
	Initial() S
	// Apply returns the state after the event.
	Apply(state S, e eventstore.Event) S
}

// StateCodec is an optional capability of a Projection[S]: a custom encoding
// of its state in snapshots. Without it, encoding/json is used.
type StateCodec[S any] interface {
	EncodeState(S) (json.RawMessage, error)
	DecodeState(json.RawMessage) (S, error)
}

// Registered is what a Registry holds: any Projection[S], whatever its S.
type Registered interface {
	Name() string
	SchemaVersion() int
}

// Registry holds projections by name. Registration is explicit: build one
// with NewRegistry and Register, or take DefaultRegistry.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Registered
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Registered{}} }

// DefaultRegistry returns a registry holding the projections the Service
// needs: MergeProjection ("merge") and OrderProjection ("order").
func DefaultRegistry() *Registry {
	r := NewRegistry()
	// Cannot fail: the names differ and both are valid.
	_ = Register[any](r, MergeProjection{})
	_ = Register[Order](r, OrderProjection{})
	return r
}

// Register adds a projection. A name may be registered once; the name must
// be non-empty and the schema version at least 1.
func Register[S any](r *Registry, p Projection[S]) error {
	if p == nil || p.Name() == "" {
		return errors.New("projections: a projection needs a name")
	}
	if p.SchemaVersion() < 1 {
		return fmt.Errorf("projections: projection %q: schema version must be at least 1", p.Name())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[p.Name()]; dup {
		return fmt.Errorf("projections: projection %q is already registered", p.Name())
	}
	r.m[p.Name()] = p
	return nil
}

// Lookup returns the projection registered under name, if it folds into S.
func Lookup[S any](r *Registry, name string) (Projection[S], error) {
	r.mu.RLock()
	p, ok := r.m[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("projections: no projection %q is registered", name)
	}
	typed, ok := p.(Projection[S])
	if !ok {
		return nil, fmt.Errorf("projections: projection %q has state type %T, not the one asked for", name, p)
	}
	return typed, nil
}

// Names lists the registered projections, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// codecOf returns the projection's state codec: its own, or encoding/json.
func codecOf[S any](p Projection[S]) StateCodec[S] {
	if c, ok := p.(StateCodec[S]); ok {
		return c
	}
	return jsonCodec[S]{}
}

type jsonCodec[S any] struct{}

func (jsonCodec[S]) EncodeState(s S) (json.RawMessage, error) { return json.Marshal(s) }

func (jsonCodec[S]) DecodeState(b json.RawMessage) (S, error) {
	var s S
	err := json.Unmarshal(b, &s)
	return s, err
}
