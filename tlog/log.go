package tlog

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// CheckpointsCollection holds the signed checkpoints, append-only: one
// document per tree size, never updated or deleted by Hindsight.
const CheckpointsCollection = "checkpoints"

// Config configures a Log. The zero value signs nothing and uses the
// defaults.
type Config struct {
	// Key signs checkpoints; nil means the log keeps its tree and serves
	// proofs but signs and stores no checkpoints.
	Key *Key
	// Every: a checkpoint is signed once this many events arrived since
	// the last one (default 1000) ...
	Every int64
	// ... or once Interval passed with any new event (default 10s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Log is the verifiable log: the Merkle tree of every event, fed by the
// event store's commit observer, plus signed checkpoints stored in their own
// collection. Build it with New, give Observe and Receipt to eventstore.Open
// (WithCommitObserver, WithAppendReceipt), call Start once the store is
// ready, and Close after the store is closed.
type Log struct {
	tree   *Tree
	cfg    Config
	log    *slog.Logger
	coll   *mongo.Collection
	kick   chan struct{}
	fault  atomic.Pointer[Fault]
	latest atomic.Pointer[Checkpoint]

	checked atomic.Bool   // Start has checked the log
	signed  atomic.Uint64 // size of the last checkpoint signed or found

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Fault says which positions of the log disagree with what was committed to
// earlier: a gap in the positions, or a stored checkpoint whose root the log
// no longer has.
type Fault struct {
	From, To int64 // positions, inclusive
	Reason   string
}

func (f *Fault) Error() string {
	if f.From == f.To {
		return fmt.Sprintf("position %d: %s", f.From, f.Reason)
	}
	return fmt.Sprintf("positions %d to %d: %s", f.From, f.To, f.Reason)
}

// New returns a Log with an empty tree.
func New(cfg Config) *Log {
	if cfg.Every <= 0 {
		cfg.Every = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	l := &Log{tree: NewTree(), cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1)}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// Tree returns the log's Merkle tree.
func (l *Log) Tree() *Tree { return l.tree }

// Key returns the signing key, nil when there is none.
func (l *Log) Key() *Key { return l.cfg.Key }

// Observe adds a commit's events to the tree. It is the store's commit
// observer: called in position order under the image's lock, so it only
// hashes. A commit that does not continue the tree (the tailer gave up
// waiting for a missing position) is a fault: the tree stops there, so it
// never commits to a log with a hole, and no checkpoint is signed any more.
func (l *Log) Observe(events []eventstore.Event) {
	if l.fault.Load() != nil {
		return
	}
	next := int64(l.tree.Size()) + 1
	if p := events[0].Position; p != next {
		l.setFault(&Fault{From: next, To: p - 1, Reason: "missing from the log (the commits after them were applied without them)"})
		return
	}
	hashes := make([][]byte, len(events))
	for i := range events {
		hashes[i] = LeafHash(&events[i])
	}
	l.tree.Append(hashes...)
	if int64(l.tree.Size())-int64(l.signed.Load()) >= l.cfg.Every {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Receipt returns the tree size and root hash (hex) after the given
// position, for AppendResult. Zero when the tree does not reach it.
func (l *Log) Receipt(lastPosition int64) (int64, string) {
	root, err := l.tree.RootAt(uint64(lastPosition))
	if err != nil {
		return 0, ""
	}
	return lastPosition, hex.EncodeToString(root)
}

// Fault returns what disagrees, or nil while the log is consistent.
func (l *Log) Fault() *Fault { return l.fault.Load() }

func (l *Log) setFault(f *Fault) {
	if l.fault.CompareAndSwap(nil, f) {
		l.log.Error("the verifiable log found tampering or loss; no checkpoint will be signed until it is resolved",
			"from", f.From, "to", f.To, "reason", f.Reason)
	}
}

// Checked reports whether Start has checked the log against the stored
// checkpoints.
func (l *Log) Checked() bool { return l.checked.Load() }

// Latest returns the latest checkpoint signed or stored, nil if none.
func (l *Log) Latest() *Checkpoint { return l.latest.Load() }

// Start checks the tree against every stored checkpoint (see Check), records
// a fault if they disagree, and starts signing checkpoints. Call it once the
// store is ready, so that the tree holds the whole log as stored.
func (l *Log) Start(ctx context.Context, db *mongo.Database) error {
	l.coll = db.Collection(CheckpointsCollection)
	began := time.Now()
	var v note.Verifier
	if l.cfg.Key != nil {
		v = l.cfg.Key.Verifier
	}
	res, err := Check(ctx, l.coll, l.tree, v)
	if err != nil {
		return fmt.Errorf("verifiable log: read checkpoints: %w", err)
	}
	if res.Fault != nil {
		l.setFault(res.Fault)
	}
	if res.Latest != nil {
		l.latest.Store(res.Latest)
		l.signed.Store(res.Latest.Size)
	}
	l.checked.Store(true)
	size, root := l.tree.Root()
	l.log.Info("verifiable log checked against its stored checkpoints", "checkpoints", res.Checked,
		"tree_size", size, "root", hex.EncodeToString(root), "ok", res.Fault == nil, "took", time.Since(began).Round(time.Microsecond))
	if l.cfg.Key == nil {
		return nil
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run()
	}()
	return nil
}

// run signs a checkpoint every Every events or Interval, whichever first.
func (l *Log) run() {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
			// A kick may have waited while the last checkpoint was signed.
			if int64(l.tree.Size())-int64(l.signed.Load()) < l.cfg.Every {
				continue
			}
		}
		ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
		if _, err := l.Checkpoint(ctx); err != nil && l.ctx.Err() == nil {
			l.log.Warn("could not store a checkpoint", "err", err)
		}
		cancel()
	}
}

// Checkpoint signs and stores a checkpoint of the tree as it is, if it grew
// since the last one, and returns the latest checkpoint. It signs nothing
// while the log has a fault: a signature over a tampered log would launder
// it.
func (l *Log) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	// Nothing is signed before Start checked the log (checked is set after
	// coll, so it also orders that write before this read).
	if l.cfg.Key == nil || !l.checked.Load() {
		return l.latest.Load(), nil
	}
	if f := l.fault.Load(); f != nil {
		return l.latest.Load(), nil
	}
	size, root := l.tree.Root()
	if size == 0 || size <= l.signed.Load() {
		return l.latest.Load(), nil
	}
	cp, err := Sign(l.cfg.Key, size, root)
	if err != nil {
		return nil, err
	}
	if err := SaveCheckpoint(ctx, l.coll, cp); err != nil {
		return nil, err
	}
	l.signed.Store(size)
	l.latest.Store(cp)
	return cp, nil
}

// Close stops signing and stores a last checkpoint. Call it after the store
// is closed, so that the last checkpoint covers every acknowledged append.
func (l *Log) Close(ctx context.Context) error {
	l.cancel()
	l.wg.Wait()
	_, err := l.Checkpoint(ctx)
	return err
}
