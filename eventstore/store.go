package eventstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Collection names.
const (
	CommitsCollection   = "commits"
	SnapshotsCollection = "snapshots"
	InstancesCollection = "instances"
)

// maxBuildWait bounds the wait between attempts to build the memory image.
const maxBuildWait = 30 * time.Second

// Store is the event log. Build it with Open and release it with Close.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	commits  *mongo.Collection
	snaps    *mongo.Collection
	beacons  *mongo.Collection
	ids      *mongo.Collection // event id reservations (eventids.go)
	log      *slog.Logger
	instance string

	// options
	maxBatch      int
	opTimeout     time.Duration
	readTimeout   time.Duration // for reads of new commits: a scan on FerretDB
	pollMin       time.Duration
	pollMax       time.Duration
	heartbeat     time.Duration
	liveness      time.Duration
	batchObserver func(appends, events int, d time.Duration)
	receipt       func(lastPosition int64) (treeSize int64, rootHash string) // observe.go
	buildAttempts int                                                        // 0 = retry building the image until Close

	img   *image
	snapI *snapshotIndex

	reqs           chan *appendReq
	arena          commitArena // the writer's buffer for encoded commits (commitbson.go)
	pullMu         sync.Mutex  // serializes reads of new commits from the store
	holeSince      time.Time   // when the tailer first met a hole; guarded by pullMu
	wake           chan struct{}
	peers          atomic.Int64 // live peers seen in the instances collection
	recent         ring         // our latest commits, carried by our beacon
	ann            announcer
	tracker        peerTracker
	wantPos        atomic.Int64 // highest position a reader waits for
	down           atomic.Bool  // the store did not answer: appends fail fast
	contending     atomic.Bool  // we keep losing races for positions to peers
	peerContending atomic.Bool  // a live peer keeps losing races for positions
	probe          chan struct{}
	ready          atomic.Bool
	loadErr        atomic.Pointer[error]
	readyCh        chan struct{}
	health         health
	wc             *writeconcern.WriteConcern // WithWriteConcern; nil: the client's

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	stats struct {
		hits, misses, appends, conflicts, batches, batched, storeErrors, logReads atomic.Uint64
		subscribers                                                               atomic.Int64
	}
}

// Option configures a Store. Options validate their arguments, so a bad one
// fails Open.
type Option func(*Store) error

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.log = l
		return nil
	}
}

// WithWriteConcern sets the write concern of every write of the store. Set
// it to the client's (options.ClientOptions.WriteConcern, e.g. from the
// URI's w=majority): the store cannot read it back from a *mongo.Client, and
// the event id reservations go as an insert command of its own
// (insertcmd.go), to which the driver adds none. Without it the
// collections inherit the client's write concern and the reservations get
// the server's default one (w:majority on a MongoDB 5.0+ replica set). An
// unacknowledged write concern is refused: a write the store cannot see
// fail could not keep event ids unique.
func WithWriteConcern(wc *writeconcern.WriteConcern) Option {
	return func(s *Store) error {
		if wc == nil {
			return nil
		}
		if !wc.Acknowledged() || !wc.IsValid() {
			return errors.New("the write concern must be valid and acknowledged")
		}
		s.wc = wc
		return nil
	}
}

// WithMaxBatch sets how many appends one group commit may hold (default 256).
func WithMaxBatch(n int) Option {
	return func(s *Store) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("max batch %d out of range 1..10000", n)
		}
		s.maxBatch = n
		return nil
	}
}

// WithOpTimeout bounds each store round trip of the writer and the tailer
// (default 5s). Appends fail with ErrStoreUnavailable after it.
func WithOpTimeout(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("op timeout must be positive")
		}
		s.opTimeout = d
		return nil
	}
}

// WithPollInterval sets the adaptive range of the cross-instance tailer: it
// polls at min right after it found news and backs off to max when idle
// (defaults 20ms and 250ms).
func WithPollInterval(min, max time.Duration) Option {
	return func(s *Store) error {
		if min <= 0 || max < min {
			return fmt.Errorf("poll interval: need 0 < min <= max, got %v..%v", min, max)
		}
		s.pollMin, s.pollMax = min, max
		return nil
	}
}

// WithLiveness sets how long a peer instance may go without a heartbeat
// before it counts as dead (default 1.5s; heartbeats go out six times as
// often). A dead peer's last commit may be durable but unannounced, so the
// tailer then reads the log: this bounds the delay a crashed writer causes
// (guarantee 5).
func WithLiveness(d time.Duration) Option {
	return func(s *Store) error {
		if d < 60*time.Millisecond {
			return fmt.Errorf("liveness %v is below 60ms", d)
		}
		s.liveness = d
		s.heartbeat = d / 6
		return nil
	}
}

// WithInstanceID names this process in the instances collection (default: random).
func WithInstanceID(id string) Option {
	return func(s *Store) error {
		if id == "" {
			return errors.New("empty instance id")
		}
		s.instance = id
		return nil
	}
}

// WithBatchObserver is called after every group commit with its size and duration.
func WithBatchObserver(f func(appends, events int, d time.Duration)) Option {
	return func(s *Store) error { s.batchObserver = f; return nil }
}

// WithBuildAttempts makes Open give up building the memory image after n
// failed attempts in a row: WaitReady then returns the last error. The
// default, 0, retries until Close (a server waits for its store to come
// back), logging each failure with its cause and what to do. Commands that
// must end, such as export, set a small n.
func WithBuildAttempts(n int) Option {
	return func(s *Store) error {
		if n < 0 {
			return fmt.Errorf("build attempts %d is negative", n)
		}
		s.buildAttempts = n
		return nil
	}
}

// Open prepares the collections and indexes, then builds the memory image in
// the background with one sequential read of the log. Until it is built,
// Ready reports false and reads and appends return ErrNotReady; WaitReady
// waits for it. The client stays owned by the caller: Close does not
// disconnect it.
func Open(ctx context.Context, client *mongo.Client, database string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("eventstore: nil client")
	}
	if database == "" {
		return nil, errors.New("eventstore: empty database name")
	}
	s := &Store{
		client:      client,
		db:          client.Database(database),
		log:         slog.Default(),
		maxBatch:    256,
		opTimeout:   5 * time.Second,
		readTimeout: time.Minute,
		pollMin:     20 * time.Millisecond,
		pollMax:     250 * time.Millisecond,
		heartbeat:   250 * time.Millisecond,
		liveness:    1500 * time.Millisecond,
		img:         newImage(),
		snapI:       newSnapshotIndex(),
		reqs:        make(chan *appendReq, 1024),
		wake:        make(chan struct{}, 1),
		probe:       make(chan struct{}, 1),
		readyCh:     make(chan struct{}),
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.instance = hex.EncodeToString(b[:])
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, fmt.Errorf("eventstore: option: %w", err)
		}
	}
	if s.wc != nil {
		s.db = client.Database(database, options.Database().SetWriteConcern(s.wc))
	}
	s.commits = s.db.Collection(CommitsCollection)
	s.snaps = s.db.Collection(SnapshotsCollection)
	s.beacons = s.db.Collection(InstancesCollection)
	s.ids = s.db.Collection(EventIDsCollection)
	if err := s.ensureIndexes(ctx); err != nil {
		return nil, &Error{Op: "open", Err: classify(err)}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.build()
	}()
	return s, nil
}

// ensureIndexes creates the indexes that carry correctness (see the package
// documentation). The unique index on (stream, version) is what makes two
// appends to the same stream version conflict; the _id (first position) does
// the same for the global order.
func (s *Store) ensureIndexes(ctx context.Context) error {
	if err := createMissing(ctx, s.commits, []mongo.IndexModel{
		{Keys: bson.D{{Key: "stream", Value: 1}, {Key: "version", Value: 1}}, Options: options.Index().SetUnique(true).SetName("stream_version")},
		{Keys: bson.D{{Key: "lastPosition", Value: 1}}, Options: options.Index().SetName("last_position")},
	}); err != nil {
		return err
	}
	return createMissing(ctx, s.snaps, []mongo.IndexModel{{
		Keys:    bson.D{{Key: "stream", Value: 1}, {Key: "projection", Value: 1}, {Key: "schemaVersion", Value: 1}, {Key: "version", Value: 1}},
		Options: options.Index().SetName("stream_projection_version"),
	}})
}

// createMissing creates the indexes whose names are not there yet. Asking
// FerretDB v1.24 to create an index that exists crashes its connection
// handler, so look first.
func createMissing(ctx context.Context, c *mongo.Collection, models []mongo.IndexModel) error {
	specs, err := c.Indexes().ListSpecifications(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, sp := range specs {
		have[sp.Name] = true
	}
	for _, m := range models {
		var o options.IndexOptions
		for _, set := range m.Options.List() {
			_ = set(&o)
		}
		if o.Name != nil && have[*o.Name] {
			continue
		}
		if _, err := c.Indexes().CreateOne(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// build reads the whole log once, then starts the writer and the tailer.
func (s *Store) build() {
	start := time.Now()
	err := s.load(s.ctx)
	for wait := time.Second; err != nil && s.ctx.Err() == nil; wait = min(2*wait, maxBuildWait) {
		n := s.buildFailed(err)
		if s.buildAttempts > 0 && n >= s.buildAttempts {
			s.log.Error("building the memory image failed; giving up", "attempts", n, "err", err, "what_to_do", advice(err))
			err = fmt.Errorf("building the memory image failed %d times: %w; %s", n, err, advice(err))
			break
		}
		// Said plainly, with what to do, and not every second: a failure
		// that repeats is a problem for an operator, not noise.
		s.log.Error("building the memory image failed; retrying", "attempt", n, "retry_in", wait, "err", err,
			"what_to_do", advice(err))
		select {
		case <-s.ctx.Done():
		case <-time.After(wait):
		}
		if s.ctx.Err() != nil {
			break
		}
		// The image keeps what the failed attempt applied: the next one
		// continues after its head.
		err = s.load(s.ctx)
	}
	if err != nil {
		s.loadErr.Store(&err)
		close(s.readyCh)
		return
	}
	s.buildSucceeded()
	is := s.img.stats()
	s.log.Info("memory image ready", "events", is.logEvents, "streams", is.streams, "resident_events", is.resident,
		"bytes", is.bytes, "budget", is.budget, "evicted", is.evicted,
		"head", s.img.head.Load(), "took", time.Since(start).Round(time.Millisecond))
	if is.budget > 0 && is.skeleton > is.budget {
		s.log.Warn("the memory budget is smaller than the image's skeleton, which is never evicted; raise it",
			"budget", is.budget, "skeleton_bytes", is.skeleton)
	}
	// Announce before serving, so that a peer's Sync never mistakes itself
	// for the only writer once we can write.
	actx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
	_ = s.announce(actx, false)
	cancel()
	s.ready.Store(true)
	close(s.readyCh)
	s.wg.Add(4)
	go func() { defer s.wg.Done(); s.runWriter() }()
	go func() { defer s.wg.Done(); s.runTailer() }()
	go func() { defer s.wg.Done(); s.runBeacon() }()
	go func() { defer s.wg.Done(); s.runProber() }()
}

// Ready reports whether the memory image is built and the store serves.
func (s *Store) Ready() bool { return s.ready.Load() && !s.closed.Load() }

// WaitReady blocks until the memory image is built, ctx ends or Close is called.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.readyCh:
		if p := s.loadErr.Load(); p != nil {
			return *p
		}
		if s.closed.Load() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return &Error{Op: "ping", Err: classify(err)}
	}
	return nil
}

// Close stops the writer, the tailer and the beacon, failing queued appends
// with ErrClosed, and waits for them. Appends already sent to the store are
// finished first, so nothing acknowledged is lost. It does not disconnect the
// caller's client. Close is safe to call more than once.
func (s *Store) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	// Batched subscriptions do not watch the store's context while they
	// wait (see Recv): wake them to find it ended.
	s.img.batch.wakeAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Announce our final head and that we are gone, so peers pick up our
	// last commits and stop counting us as alive.
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s.announce(dctx, true)
	return nil
}

// HeadPosition returns the highest position in the memory image.
func (s *Store) HeadPosition() int64 { return s.img.head.Load() }

// Instance returns the id this process announces in the instances collection.
func (s *Store) Instance() string { return s.instance }

// Stats returns counters for metrics.
func (s *Store) Stats() Stats {
	is := s.img.stats()
	return Stats{
		HeadPosition:   s.img.head.Load(),
		Streams:        is.streams,
		LogEvents:      is.logEvents,
		ResidentEvents: is.resident,
		ResidentBytes:  is.bytes,
		SkeletonBytes:  is.skeleton,
		BudgetBytes:    is.budget,
		Evictions:      is.evicted,
		Hits:           s.stats.hits.Load(),
		Misses:         s.stats.misses.Load(),
		Appends:        s.stats.appends.Load(),
		Conflicts:      s.stats.conflicts.Load(),
		Batches:        s.stats.batches.Load(),
		BatchedAppends: s.stats.batched.Load(),
		StoreErrors:    s.stats.storeErrors.Load(),
		LogReads:       s.stats.logReads.Load(),
		Peers:          int(s.peers.Load()),
		Subscribers:    s.stats.subscribers.Load(),
		Ready:          s.Ready(),
	}
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if !s.ready.Load() {
		return ErrNotReady
	}
	return nil
}

// classify maps driver errors: anything that is not an answer from the server
// (network errors, timeouts, no server selectable) means the store is
// unavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var se mongo.ServerError
	if errors.As(err, &se) && !mongo.IsTimeout(err) && !mongo.IsNetworkError(err) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrStoreUnavailable, err)
}
