package eventstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Beacons: each instance keeps one document in the instances collection with
// its head, a heartbeat, and copies of its most recent commits. Reading that
// tiny collection is cheap on every store, while reading the log by position
// is a scan of the whole log on FerretDB. So instances learn each other's
// commits from the beacons, and read the log only when the beacons cannot
// account for everything (see Store.catchUp).

type beaconDoc struct {
	ID     string    `bson:"_id"`
	Head   int64     `bson:"head"`
	Seen   time.Time `bson:"seen"`   // the heartbeat: changes on every announce
	Closed bool      `bson:"closed"` // closed cleanly; its head is final
	// Every is true while the instance announces each of its commits before
	// acknowledging it. Then every commit it acknowledged is at or below Head.
	Every bool `bson:"every"`
	// Contending is set while the instance keeps losing the race for the
	// next position; peers then hold back their next batch (see holdBack).
	Contending bool        `bson:"contending"`
	Recent     []commitDoc `bson:"recent,omitempty"` // its latest commits, in position order
}

// Bounds of the recent commits a beacon carries. The whole ring is rewritten
// with every announce, so it is kept small: an active peer reads the beacons
// every poll interval (20ms by default), and one that falls further behind
// than the ring reaches reads the log instead.
// FerretDB decodes every beacon, ring included, on each read of the
// collection, so the ring is small; the latest batch is kept whole up to
// ringMaxBatchBytes, because a writer that lost a race needs all of it.
const (
	ringMaxCommits    = 64
	ringMaxBytes      = 64 << 10
	ringMaxBatchBytes = 256 << 10
	ringMaxAge        = 500 * time.Millisecond
)

// beaconBatch bounds the beacons in one reply of the store by bytes (see
// reads.go): a beacon's ring holds at most ringMaxBatchBytes of events, a
// little more as BSON.
const beaconBatch = MaxReplyBytes / (2 * ringMaxBatchBytes)

// maxYield bounds how long a writer holds back its next batch while a peer
// is contending. Without holding back, a busy writer wins every race for the
// next position: it writes its next batch while the loser is still learning
// what the last one was.
const maxYield = 100 * time.Millisecond

// beaconRetention is how long the beacon of a closed or dead instance is kept.
const beaconRetention = 24 * time.Hour

// ring holds copies of this instance's latest durable commits.
type ring struct {
	mu      sync.Mutex
	docs    []ringEntry
	bytes   int
	version uint64 // bumped on every add
}

type ringEntry struct {
	doc   *commitDoc
	bytes int
	added time.Time
}

func (r *ring) add(docs []*commitDoc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	batch, batchBytes := 0, 0 // the latest batch, kept whole within ringMaxBatchBytes
	for _, d := range docs {
		n := 64
		for _, e := range d.Events {
			n += len(e.ID) + len(e.Type) + len(e.Data) + len(e.Metadata) + len(e.Hash) + 32
		}
		r.docs = append(r.docs, ringEntry{doc: d, bytes: n, added: now})
		r.bytes += n
		batch++
		batchBytes += n
	}
	keep := 0
	if batchBytes <= ringMaxBatchBytes {
		keep = batch
	}
	drop := 0
	for len(r.docs)-drop > keep && (len(r.docs)-drop > ringMaxCommits || r.bytes > ringMaxBytes ||
		now.Sub(r.docs[drop].added) > ringMaxAge) {
		r.bytes -= r.docs[drop].bytes
		drop++
	}
	r.docs = slices.Delete(r.docs, 0, drop)
	r.version++
}

// snapshot returns the ring's commits and its version.
func (r *ring) snapshot() ([]*commitDoc, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*commitDoc, len(r.docs))
	for i, e := range r.docs {
		out[i] = e.doc
	}
	return out, r.version
}

// announcer writes this instance's beacon. One mutex orders the writes, so a
// heartbeat never overwrites a newer head with an older one.
type announcer struct {
	mu          sync.Mutex
	every       atomic.Bool // the last successful announce said Every
	ringVersion uint64      // the ring version last written
}

// announce writes this instance's beacon: head, heartbeat, whether every
// commit is announced, and the recent commits if they changed.
func (s *Store) announce(ctx context.Context, closed bool) error {
	s.ann.mu.Lock()
	defer s.ann.mu.Unlock()
	every := s.peers.Load() > 0 && !closed
	set := bson.D{{Key: "head", Value: s.img.head.Load()}, {Key: "seen", Value: time.Now().UTC()},
		{Key: "closed", Value: closed}, {Key: "every", Value: every}, {Key: "contending", Value: s.contending.Load()}}
	// The recent commits are for live peers. Without any, nobody reads
	// them (a peer that starts reads the log, and learns that this
	// instance does not announce every commit from every), and writing
	// them on each heartbeat made FerretDB decode and encode up to 64
	// commits four times a second.
	docs, version := s.recent.snapshot()
	withRing := version != s.ann.ringVersion && s.peers.Load() > 0
	if withRing {
		set = append(set, bson.E{Key: "recent", Value: docs})
	}
	_, err := s.beacons.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.instance}},
		bson.D{{Key: "$set", Value: set}}, options.UpdateOne().SetUpsert(true))
	if err == nil {
		s.ann.every.Store(every)
		if withRing {
			s.ann.ringVersion = version
		}
	}
	return err
}

// mustAnnounce reports whether commits have to be announced before they are
// acknowledged: while peers are alive, and once more after the last peer went
// away, to withdraw the promise that every commit is announced.
func (s *Store) mustAnnounce() bool {
	return s.peers.Load() > 0 || s.ann.every.Load()
}

// peerView is what one read of the beacons tells about the other instances.
type peerView struct {
	alive    int      // peers alive now
	head     int64    // highest head any instance announced, live or not
	allEvery bool     // every live peer announces each commit before acknowledging it
	died     bool     // a peer stopped heartbeating since the last read
	ahead    []string // instances whose announced head is beyond ours
}

// peerTracker judges liveness by when a peer's heartbeat last changed on this
// instance's clock, so clock skew between machines does not matter.
type peerTracker struct {
	mu   sync.Mutex
	last map[string]peerSeen
}

type peerSeen struct {
	seen    time.Time // the peer's heartbeat value
	changed time.Time // when we saw it change, our clock
	alive   bool
}

// readBeacons reads the beacons and updates the view of which peers are
// alive. With recent, it also applies the peers' recent commits that follow
// the image's head, in one round trip.
func (s *Store) readBeacons(ctx context.Context, recent bool) (peerView, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	opts := options.Find().SetBatchSize(beaconBatch)
	if !recent {
		opts.SetProjection(bson.D{{Key: "recent", Value: 0}})
	}
	cur, err := s.beacons.Find(ctx, bson.D{}, opts)
	if err != nil {
		return peerView{}, classify(err)
	}
	var docs []beaconDoc
	if err := cur.All(ctx, &docs); err != nil {
		return peerView{}, classify(err)
	}
	if recent {
		s.applyDocs(docs)
	}
	v := peerView{allEvery: true}
	contending := false
	defer func() { s.peerContending.Store(contending) }()
	mine := s.img.head.Load()
	now := time.Now()
	s.tracker.mu.Lock()
	defer s.tracker.mu.Unlock()
	if s.tracker.last == nil {
		s.tracker.last = map[string]peerSeen{}
	}
	for _, d := range docs {
		v.head = max(v.head, d.Head)
		if d.ID == s.instance {
			continue
		}
		if d.Head > mine {
			v.ahead = append(v.ahead, d.ID)
		}
		p, known := s.tracker.last[d.ID]
		switch {
		case !known:
			// First sight: trust the peer's clock once, generously.
			p = peerSeen{seen: d.Seen, changed: now, alive: now.Sub(d.Seen) < s.liveness+10*time.Second}
		case !d.Seen.Equal(p.seen):
			p.seen, p.changed = d.Seen, now
		}
		wasAlive := p.alive
		p.alive = !d.Closed && now.Sub(p.changed) < s.liveness && (known || p.alive)
		if wasAlive && !p.alive && !d.Closed {
			v.died = true
			s.log.Warn("peer instance stopped heartbeating; reading the log for its last commits", "peer", d.ID)
		}
		s.tracker.last[d.ID] = p
		if p.alive {
			v.alive++
			v.allEvery = v.allEvery && d.Every
			contending = contending || d.Contending
		}
	}
	s.peers.Store(int64(v.alive))
	return v, nil
}

// applyRecent reads the recent commits of the given instances and applies
// those that follow the image's head, in position order, as far as they are
// contiguous. It returns how many commits it applied.
func (s *Store) applyRecent(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	cur, err := s.beacons.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetBatchSize(beaconBatch))
	if err != nil {
		return 0, classify(err)
	}
	var docs []beaconDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, classify(err)
	}
	return s.applyDocs(docs), nil
}

// applyDocs applies the recent commits of beacons that follow the image's
// head, in position order, as far as they are contiguous.
func (s *Store) applyDocs(docs []beaconDoc) int {
	head := s.img.head.Load()
	var commits []*commitDoc
	for i := range docs {
		for j := range docs[i].Recent {
			if c := &docs[i].Recent[j]; c.ID > head {
				commits = append(commits, c)
			}
		}
	}
	slices.SortFunc(commits, func(a, b *commitDoc) int { return cmp.Compare(a.ID, b.ID) })
	n := 0
	for _, c := range commits {
		switch s.img.apply(c.events(), false) {
		case applied:
			n++
		case gap:
			return n
		}
	}
	return n
}

// catchUp brings the image up to what the peers announced, from their
// beacons, and reports whether it is complete: whether it now holds every
// commit any live instance has acknowledged. When it is not, the caller reads
// the log.
func (s *Store) catchUp(ctx context.Context) (peerView, bool, error) {
	v, err := s.readBeacons(ctx, false)
	if err != nil {
		return v, false, err
	}
	if len(v.ahead) > 0 {
		if _, err := s.applyRecent(ctx, v.ahead); err != nil {
			return v, false, err
		}
	}
	complete := v.allEvery && !v.died && s.img.head.Load() >= v.head
	return v, complete, nil
}
