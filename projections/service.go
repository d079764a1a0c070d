package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Defaults of Options.
const (
	DefaultSnapshotEvery      = 100
	DefaultLagWait            = 5 * time.Second
	DefaultCacheSize          = 10000
	DefaultCacheBytes         = 64 << 20
	DefaultMaxCommandAttempts = 50
	// Declarative projections: each reducer call (one event) and each
	// filter call (one partition) gets this long, and a state this big.
	DefaultReducerTimeout         = 100 * time.Millisecond
	DefaultMaxStateBytes          = 64 << 10
	DefaultProjectionMemoryBudget = 256 << 20
)

// Options configure the projections service. The zero value is the default.
type Options struct {
	SnapshotEvery int           // snapshot every K events per stream; 0 = 100
	LagWait       time.Duration // how long at:{position} waits for the read model; 0 = 5s
	CacheSize     int           // LRU of current states, per cache (orders, merged streams); 0 = 10000
	// CacheBytes bounds the memory of each of those two caches, as
	// estimated from their states' JSON (text plus 64 bytes per value);
	// 0 = 64 MiB. A state estimated over it is not cached.
	CacheBytes int64
	Logger     *slog.Logger // nil = slog.Default()

	// Registry supplies the projections the service uses: "order"
	// (Projection[Order]) and "merge" (Projection[any]). nil means
	// DefaultRegistry(). Registering a variant of a projection under the
	// same name with a new schema version is how its snapshots and read
	// model are invalidated.
	Registry *Registry
	// Checkpoints persists the read model's checkpoint; nil keeps it in
	// memory only. See CheckpointStore.
	Checkpoints CheckpointStore
	// MaxCommandAttempts bounds how often a command without an expected
	// version is tried against fresh state after conflicts; 0 = 50.
	MaxCommandAttempts int
	// ReducerTimeout limits one reducer call of a declarative projection;
	// 0 = 100ms. MaxStateBytes limits the size of its state (as JSON);
	// 0 = 64 KiB. Breaking either faults the projection (ErrProjectionFaulted).
	ReducerTimeout time.Duration
	MaxStateBytes  int
	// ProjectionMemoryBudget bounds the memory of the declarative
	// projections' states, all versions together (estimated: their JSON plus
	// a fixed overhead per state); 0 = 256 MiB, negative = unlimited. The
	// version whose next state would pass it evicts old states first
	// (declared_evict.go) and faults with MEMORY_BUDGET only when nothing is
	// left to evict.
	ProjectionMemoryBudget int64

	// noRefill leaves restored declarative states to be folded when read
	// (tests set it through export_test.go, to read them that way).
	noRefill bool
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.SnapshotEvery < 0:
		return o, fmt.Errorf("projections: SnapshotEvery must not be negative, got %d", o.SnapshotEvery)
	case o.LagWait < 0:
		return o, fmt.Errorf("projections: LagWait must not be negative, got %v", o.LagWait)
	case o.CacheSize < 0:
		return o, fmt.Errorf("projections: CacheSize must not be negative, got %d", o.CacheSize)
	case o.CacheBytes < 0:
		return o, fmt.Errorf("projections: CacheBytes must not be negative, got %d", o.CacheBytes)
	case o.ReducerTimeout < 0 || o.MaxStateBytes < 0:
		return o, fmt.Errorf("projections: ReducerTimeout and MaxStateBytes must not be negative")
	case o.MaxCommandAttempts < 0:
		return o, fmt.Errorf("projections: MaxCommandAttempts must not be negative, got %d", o.MaxCommandAttempts)
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.LagWait == 0 {
		o.LagWait = DefaultLagWait
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MaxCommandAttempts == 0 {
		o.MaxCommandAttempts = DefaultMaxCommandAttempts
	}
	if o.ReducerTimeout == 0 {
		o.ReducerTimeout = DefaultReducerTimeout
	}
	if o.MaxStateBytes == 0 {
		o.MaxStateBytes = DefaultMaxStateBytes
	}
	if o.ProjectionMemoryBudget == 0 {
		o.ProjectionMemoryBudget = DefaultProjectionMemoryBudget
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = DefaultRegistry()
	}
	return o, nil
}

// Service holds the projections: the generic merge state engine, the order
// domain (commands, time travel) and the temporal order read model.
type Service struct {
	store *eventstore.Store
	opts  Options
	log   *slog.Logger

	orders     *engine[Order]
	merge      *engine[any]
	orderCache *stateCache[Order]
	mergeCache *stateCache[any]
	snaps      *snapshotter
	stats      engineStats
	cacheHits  atomic.Uint64
	cacheMiss  atomic.Uint64

	rm    *readModel
	ready atomic.Bool
	decl  *Declarative // the declarative projections (declared_manager.go)

	mu      sync.Mutex
	opened  bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped chan struct{}
}

// New builds the service on a store. Call Open to start the projector. It
// fails on invalid options, a nil store, or a registry without the order
// and merge projections.
func New(store *eventstore.Store, opts Options) (*Service, error) {
	if store == nil {
		return nil, errors.New("projections: nil store")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	orderProj, err := Lookup[Order](o.Registry, OrderProjectionName)
	if err != nil {
		return nil, err
	}
	mergeProj, err := Lookup[any](o.Registry, MergeProjectionName)
	if err != nil {
		return nil, err
	}
	s := &Service{store: store, opts: o, log: o.Logger, rm: newReadModel(), stopped: make(chan struct{})}
	s.decl = newDeclarative(s)
	s.snaps = newSnapshotter(store, s.log)
	s.orders = newEngine(store, orderProj, o.SnapshotEvery, s.snaps, &s.stats, s.log)
	s.merge = newEngine(store, mergeProj, o.SnapshotEvery, s.snaps, &s.stats, s.log)
	s.orderCache = newStateCache[Order](o.CacheSize, o.CacheBytes)
	s.mergeCache = newStateCache[any](o.CacheSize, o.CacheBytes)
	return s, nil
}

// Open starts the read-model projector (it follows the global log from its
// checkpoint) and returns once it is running. With Options.Checkpoints it
// first reads the stored checkpoint, to log whether the read model's schema
// version changed since the last run.
func (s *Service) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		return errors.New("projections: service already opened")
	}
	if s.closed {
		return errors.New("projections: service closed")
	}
	schema := s.orders.proj.SchemaVersion()
	if cs := s.opts.Checkpoints; cs != nil {
		cp, err := cs.LoadCheckpoint(ctx, ReadModelProjector)
		switch {
		case errors.Is(err, ErrNotFound):
			s.log.Info("order read model has no stored checkpoint; building it from the log", "schemaVersion", schema)
		case err != nil:
			return fmt.Errorf("projections: load checkpoint: %w", err)
		case cp.SchemaVersion != schema:
			s.log.Info("order read model schema version changed; rebuilding it from the log",
				"storedSchemaVersion", cp.SchemaVersion, "schemaVersion", schema, "storedPosition", cp.Position)
		default:
			s.log.Info("order read model lives in memory; rebuilding it from the log",
				"schemaVersion", schema, "storedPosition", cp.Position)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.opened = true
	s.goTracked(func() { s.snaps.run(runCtx) })
	s.goTracked(func() { s.runProjector(runCtx) })
	s.goTracked(func() { s.decl.runDefinitions(runCtx) })
	if s.opts.Checkpoints != nil {
		s.goTracked(func() { s.runCheckpointSaver(runCtx) })
	}
	go func() { s.wg.Wait(); close(s.stopped) }()
	return nil
}

func (s *Service) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Declarative returns the declarative projections (jq reducers defined at
// run time).
func (s *Service) Declarative() *Declarative { return s.decl }

// Ready reports whether the read model has caught up with the log at least once.
func (s *Service) Ready() bool { return s.ready.Load() }

// Lag returns how many positions the read model is behind the store's head.
func (s *Service) Lag() int64 {
	if s.store == nil {
		return 0
	}
	return max(0, s.store.HeadPosition()-s.rm.checkpoint.Load())
}

// Checkpoint returns the read model's checkpoint position.
func (s *Service) Checkpoint() int64 { return s.rm.checkpoint.Load() }

// Close stops the projector and the snapshot writer and waits for them, at
// most until ctx ends. Snapshots still queued are dropped (they are only an
// optimization). Close is safe to call more than once.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		return nil
	}
	s.cancel()
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats are counters for metrics and benchmarks.
type Stats struct {
	Folds            uint64 // state computations by the engines
	EventsFolded     uint64 // events applied by them
	SnapshotsUsed    uint64 // computations that started from a snapshot
	SnapshotsSaved   uint64
	SnapshotsDropped uint64 // offered while the write queue was full
	SnapshotsFailed  uint64
	CacheHits        uint64 // current order states served from the LRU as they were
	CacheMisses      uint64 // ... that needed events folded (or were not cached)
	CachedOrders     int
	CachedBytes      int64 // what the two state caches count for what they hold
	ReadModelOrders  int   // orders in the temporal read model
	ReadModelStates  int   // order states it holds
	Checkpoint       int64 // read model checkpoint
	Lag              int64 // positions the read model is behind the store
	Ready            bool
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	orders, states := s.rm.size()
	return Stats{
		Folds:            s.stats.folds.Load(),
		EventsFolded:     s.stats.eventsFolded.Load(),
		SnapshotsUsed:    s.stats.snapshotsUsed.Load(),
		SnapshotsSaved:   s.snaps.saved.Load(),
		SnapshotsDropped: s.snaps.dropped.Load(),
		SnapshotsFailed:  s.snaps.failed.Load(),
		CacheHits:        s.cacheHits.Load(),
		CacheMisses:      s.cacheMiss.Load(),
		CachedOrders:     s.orderCache.len(),
		CachedBytes:      s.orderCache.held() + s.mergeCache.held(),
		ReadModelOrders:  orders,
		ReadModelStates:  states,
		Checkpoint:       s.rm.checkpoint.Load(),
		Lag:              s.Lag(),
		Ready:            s.Ready(),
	}
}

// StreamState implements StateEngine: the stream's events folded as JSON
// merge patches up to the point, from the nearest snapshot. A stream without
// events at that point is (nil, 0, nil). A state over MaxStreamStateBytes as
// JSON or MaxStreamStateValues values, at the point or at any version before
// it, is a *StateTooLargeError (ErrStateTooLarge).
func (s *Service) StreamState(ctx context.Context, streamID string, at eventstore.At) (json.RawMessage, int64, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, 0, invalidInput("%s", trimSentinel(err))
	}
	v, err := s.resolve(ctx, streamID, at)
	if err != nil || v == 0 {
		return nil, 0, err
	}
	var f folded[any]
	if at.IsNow() {
		f, err = current(ctx, s, s.merge, s.mergeCache, streamID)
	} else {
		var base *folded[any]
		if c, ok := s.mergeCache.get(streamID); ok && c.version <= v {
			base = &c
		}
		f, err = s.merge.at(ctx, streamID, v, base)
	}
	if err != nil {
		return nil, 0, err
	}
	b, err := s.merge.encode(f)
	if err != nil {
		return nil, 0, err
	}
	return b, f.version, nil
}

// resolve returns the version the stream had at the point. A position this
// instance has not seen yet is waited for (read your writes across
// instances), up to LagWait.
func (s *Service) resolve(ctx context.Context, streamID string, at eventstore.At) (int64, error) {
	if v, ok := at.Version(); ok && v < 0 {
		return 0, invalidInput("version must not be negative, got %d", v)
	}
	if p, ok := at.Position(); ok {
		if p < 0 {
			return 0, invalidInput("position must not be negative, got %d", p)
		}
		wctx, cancel := context.WithTimeout(ctx, s.opts.LagWait)
		err := s.waitStore(ctx, wctx, p)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	return s.store.ResolveVersion(ctx, streamID, at)
}

// waitStore waits, within wctx, until the store's memory image holds
// position p. ctx is the caller's context, to tell its end from the wait's.
func (s *Service) waitStore(ctx, wctx context.Context, p int64) error {
	if s.store.HeadPosition() >= p {
		return nil
	}
	err := s.store.WaitForPosition(wctx, p)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: position %d has not reached this instance after %v; its log ends at %d",
			ErrProjectionLagging, p, s.opts.LagWait, s.store.HeadPosition())
	}
	return err
}

// current returns the stream's current state: the cached one when it is at
// the stream's head (a memory read, so the cache stays coherent with writes
// of other instances), else the cached or nearest snapshot state plus the
// events after it.
func current[S any](ctx context.Context, s *Service, e *engine[S], cache *stateCache[S], streamID string) (folded[S], error) {
	head, err := s.store.Head(ctx, streamID)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return e.initial(), nil
	}
	if err != nil {
		return folded[S]{}, err
	}
	c, ok := cache.get(streamID)
	if ok && c.version == head.Version {
		s.cacheHits.Add(1)
		return c, nil
	}
	s.cacheMiss.Add(1)
	var base *folded[S]
	if ok && c.version < head.Version {
		base = &c
	}
	f, err := e.at(ctx, streamID, head.Version, base)
	if err != nil {
		return folded[S]{}, err
	}
	cache.put(streamID, f)
	return f, nil
}

// Order returns the order as it was at the point, or ErrNotFound.
func (s *Service) Order(ctx context.Context, orderID string, at eventstore.At) (Order, error) {
	if err := validateOrderID(orderID); err != nil {
		return Order{}, err
	}
	stream := OrderStreamID(orderID)
	v, err := s.resolve(ctx, stream, at)
	if err != nil {
		return Order{}, err
	}
	if v == 0 {
		return Order{}, notFound(orderID)
	}
	var f folded[Order]
	if at.IsNow() {
		f, err = current(ctx, s, s.orders, s.orderCache, stream)
	} else {
		var base *folded[Order]
		if c, ok := s.orderCache.get(stream); ok && c.version <= v {
			base = &c
		}
		f, err = s.orders.at(ctx, stream, v, base)
	}
	if err != nil {
		return Order{}, err
	}
	if !orderExists(f.state) {
		return Order{}, notFound(orderID)
	}
	return cloneOrder(f.state), nil
}

func notFound(orderID string) error {
	return fmt.Errorf("%w: order %q does not exist at that point", ErrNotFound, orderID)
}

// OrderHistory returns the order's revisions recorded within [from, to]
// (nil bounds are open), oldest first. Unknown order: ErrNotFound.
func (s *Service) OrderHistory(ctx context.Context, orderID string, from, to *time.Time) ([]OrderRevision, error) {
	if err := validateOrderID(orderID); err != nil {
		return nil, err
	}
	if from != nil && to != nil && from.After(*to) {
		return nil, invalidInput("from (%s) is after to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	stream := OrderStreamID(orderID)
	cur, err := current(ctx, s, s.orders, s.orderCache, stream)
	if err != nil {
		return nil, err
	}
	if !orderExists(cur.state) {
		return nil, fmt.Errorf("%w: order %q does not exist", ErrNotFound, orderID)
	}
	first, last := int64(1), cur.version
	if from != nil {
		v, err := s.store.ResolveVersion(ctx, stream, eventstore.AtTime(from.Add(-time.Nanosecond)))
		if err != nil {
			return nil, err
		}
		first = v + 1
	}
	if to != nil {
		if last, err = s.store.ResolveVersion(ctx, stream, eventstore.AtTime(*to)); err != nil {
			return nil, err
		}
		last = min(last, cur.version)
	}
	if first > last {
		return []OrderRevision{}, nil
	}
	start, err := s.orders.at(ctx, stream, first-1, nil)
	if err != nil {
		return nil, err
	}
	out := make([]OrderRevision, 0, last-first+1)
	_, err = s.orders.fold(ctx, stream, start, last, func(ev eventstore.Event, o Order) {
		if orderExists(o) {
			out = append(out, OrderRevision{Version: ev.Version, Position: ev.Position,
				RecordedAt: ev.RecordedAt, Event: ev, Order: cloneOrder(o)})
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
