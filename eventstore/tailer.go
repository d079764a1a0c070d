package eventstore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxHoleWait bounds how long the tailer waits for a missing position before
// it moves on (guarantee 5). By construction positions have no holes, so a
// hole that lasts this long means the store lost a commit.
const maxHoleWait = 2 * time.Second

// pull reads every commit after the image's head from the store and applies
// it. On FerretDB this is a scan of the whole collection, even by _id (about
// 60 µs per stored commit measured here, point lookups included), so it is
// only done when a peer announced news, on a conflict, or as a safety poll. It returns how many commits it applied. Other instances' writes reach
// the image this way; so do our own writes whose outcome was unknown.
func (s *Store) pull(ctx context.Context) (int, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	n := 0
	head := s.img.head.Load()
	cur, err := s.commits.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: head}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return n, classify(err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d commitDoc
		if err := cur.Decode(&d); err != nil {
			return n, err
		}
		switch s.img.apply(d.events(), s.holeExpired(d.ID)) {
		case applied:
			n++
			s.holeSince = time.Time{}
		case gap:
			if s.holeSince.IsZero() {
				s.holeSince = time.Now()
			}
			return n, nil
		}
	}
	s.holeSince = time.Time{}
	return n, classify(cur.Err())
}

// holeExpired reports whether the position before first has been missing for
// longer than maxHoleWait. Callers hold pullMu.
func (s *Store) holeExpired(first int64) bool {
	if s.holeSince.IsZero() || time.Since(s.holeSince) < maxHoleWait {
		return false
	}
	s.log.Error("positions missing from the log for too long; skipping them",
		"after", s.img.head.Load(), "next", first)
	return true
}

func (s *Store) hasHole() bool {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	return !s.holeSince.IsZero()
}

type beaconDoc struct {
	ID     string    `bson:"_id"`
	Head   int64     `bson:"head"`
	Seen   time.Time `bson:"seen"`
	Closed bool      `bson:"closed"`
}

// beaconRetention is how long the beacon of a closed or dead instance is kept.
const beaconRetention = 24 * time.Hour

// announce writes this instance's beacon.
func (s *Store) announce(ctx context.Context, closed bool) error {
	_, err := s.beacons.UpdateOne(ctx, bson.D{{Key: "_id", Value: s.instance}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "head", Value: s.img.head.Load()},
			{Key: "seen", Value: time.Now().UTC()}, {Key: "closed", Value: closed}}}},
		options.UpdateOne().SetUpsert(true))
	return err
}

// runTailer picks up commits of other instances. Each instance announces its
// head in the small instances collection (runBeacon); reading that is cheap on
// every store, while reading the log by position is a scan on FerretDB. So the
// tailer reads the log only when a peer announces a head beyond ours, when
// asked to (WaitForPosition), and every safetyPoll while peers are alive, to
// catch commits whose writer died before announcing them.
func (s *Store) runTailer() {
	interval := s.pollMin
	var lastRead time.Time
	for {
		forced := false
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(interval):
		case <-s.wake:
			forced = true
		}
		peers, peerHead, err := s.readBeacons()
		if err == nil {
			s.peers.Store(int64(peers))
		}
		if err != nil && !forced {
			interval = s.pollMax
			continue
		}
		need := forced || peerHead > s.img.head.Load() ||
			(peers > 0 && time.Since(lastRead) >= s.safetyPoll) || s.hasHole()
		if !need {
			interval = min(interval*2, s.pollMax)
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.readTimeout)
		n, err := s.pull(ctx)
		cancel()
		lastRead = time.Now()
		if err != nil {
			s.stats.storeErrors.Add(1)
			s.log.Warn("tailer could not read the log", "err", err)
			interval = s.pollMax
			continue
		}
		if n > 0 {
			interval = s.pollMin
		} else {
			interval = min(interval*2, s.pollMax)
		}
	}
}

// readBeacons returns how many other instances are alive and the highest head
// any instance announced.
func (s *Store) readBeacons() (peers int, head int64, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
	defer cancel()
	cur, err := s.beacons.Find(ctx, bson.D{})
	if err != nil {
		return 0, 0, err
	}
	var docs []beaconDoc
	if err := cur.All(ctx, &docs); err != nil {
		return 0, 0, err
	}
	for _, d := range docs {
		if d.Head > head {
			head = d.Head
		}
		if d.ID != s.instance && !d.Closed && time.Since(d.Seen) < s.liveness {
			peers++
		}
	}
	return peers, head, nil
}

// runBeacon announces this instance's head after every commit and
// periodically as a heartbeat.
func (s *Store) runBeacon() {
	heartbeat := time.NewTicker(s.liveness / 4)
	defer heartbeat.Stop()
	// Announce at once, so peers know from the start that we are alive.
	ctx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
	var announced int64 = -1
	if s.announce(ctx, false) == nil {
		announced = s.img.head.Load()
	}
	cancel()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.beacon:
			// Alone, nobody needs to hear of each commit: a peer that
			// starts reads the log itself, and we start announcing once
			// the tailer sees its beacon.
			if s.peers.Load() == 0 {
				continue
			}
		case <-heartbeat.C:
			announced = -1
		}
		head := s.img.head.Load()
		if head == announced {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
		if s.announce(ctx, false) == nil {
			announced = head
		}
		cancel()
	}
}

// Sync reads the log from the store now, so the image holds every commit
// that was durable when Sync was called, including other instances'.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return &Error{Op: "sync", Err: err}
	}
	// Reading the log is a scan on FerretDB; when no other instance is alive
	// and none announced a head beyond ours, every commit came through this
	// process and the image already holds it.
	if peers, peerHead, err := s.readBeacons(); err == nil && peers == 0 && peerHead <= s.img.head.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.readTimeout)
	defer cancel()
	if _, err := s.pull(ctx); err != nil {
		return &Error{Op: "sync", Err: err}
	}
	return nil
}

// WaitForPosition waits until the image holds position p, asking the tailer
// to read the log at once. It is how a read on any instance sees a write
// acknowledged elsewhere (guarantee 8).
func (s *Store) WaitForPosition(ctx context.Context, p int64) error {
	if s.img.head.Load() >= p {
		return nil
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		ch := s.img.wait()
		if s.img.head.Load() >= p {
			return nil
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-retry.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}
