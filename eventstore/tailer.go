package eventstore

import (
	"context"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxHoleWait bounds how long the tailer waits for a missing position before
// it moves on (guarantee 5). By construction positions have no holes, so a
// hole that lasts this long means the store lost a commit.
const maxHoleWait = 2 * time.Second

// pull reads every commit after the image's head from the store and applies
// it. On FerretDB this is a scan of the whole collection, even by _id (about
// 60 µs per stored commit measured here, point lookups included), so it is
// only done when the beacons cannot account for the log (see runTailer and
// catchUp). It returns how many commits it applied. Our own writes whose
// outcome was unknown reach the image this way.
func (s *Store) pull(ctx context.Context) (int, error) {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	s.stats.logReads.Add(1)
	n := 0
	head := s.img.head.Load()
	cur, err := s.findCommits(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: head}}}},
		"", head, openEnded)
	if err != nil {
		return n, err
	}
	defer cur.close(ctx)
	for {
		d, err := cur.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		force := false
		if h := s.img.head.Load(); d.ID > h+1 && s.holeExpired(d.ID) {
			force = true
			s.noteGap(h+1, d.ID-1)
		}
		switch s.img.apply(d.events(), force) {
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
	return n, nil
}

// holeExpired reports whether the position before first has been missing for
// longer than maxHoleWait. Callers hold pullMu.
func (s *Store) holeExpired(first int64) bool {
	if s.holeSince.IsZero() || time.Since(s.holeSince) < maxHoleWait {
		return false
	}
	return true
}

func (s *Store) hasHole() bool {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	return !s.holeSince.IsZero()
}

// runTailer picks up commits of other instances from their beacons, and reads
// the log (a scan on FerretDB) only when the beacons cannot account for
// everything: a peer is further ahead than its recent commits reach, a peer
// died (its last commit may be durable but unannounced), a position is
// missing, or a reader waits for a position no beacon explains.
func (s *Store) runTailer() {
	interval := s.pollMin
	for {
		forced := false
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(interval):
		case <-s.wake:
			forced = true
		}
		before := s.img.head.Load()
		v, complete, err := s.catchUp(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Debug("tailer could not read the beacons", "err", err)
			}
			interval = s.pollMax
			continue
		}
		behind := s.img.head.Load() < v.head
		waiting := forced && s.wantPos.Load() > s.img.head.Load()
		if behind || v.died || s.hasHole() || (waiting && !complete) {
			ctx, cancel := context.WithTimeout(s.ctx, s.readTimeout)
			_, err := s.pull(ctx)
			cancel()
			if err != nil {
				s.stats.storeErrors.Add(1)
				s.log.Warn("tailer could not read the log", "err", err)
				interval = s.pollMax
				continue
			}
		}
		// Keep polling fast while peers make progress; our own writes
		// advance the head too, but need no polling.
		if s.img.head.Load() > before && s.peers.Load() > 0 {
			interval = s.pollMin
		} else {
			interval = min(interval*2, s.pollMax)
		}
	}
}

// runBeacon sends the heartbeat. Commits are announced by the writer itself,
// before it acknowledges them (see commitBatch).
func (s *Store) runBeacon() {
	ctx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
	_, _ = s.beacons.DeleteMany(ctx, bson.D{{Key: "seen", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-beaconRetention)}}}})
	cancel()
	heartbeat := time.NewTicker(s.heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-heartbeat.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opTimeout)
		if err := s.announce(ctx, false); err != nil && s.ctx.Err() == nil {
			s.log.Debug("heartbeat failed", "err", err)
		}
		cancel()
	}
}

// Sync brings the image up to date: when it returns nil, the image holds
// every commit that any instance acknowledged before Sync was called. It
// learns them from the beacons, and reads the log only if they cannot account
// for everything.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return &Error{Op: "sync", Err: err}
	}
	_, complete, err := s.catchUp(ctx)
	if err == nil && complete && !s.hasHole() {
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
	for {
		w := s.wantPos.Load()
		if w >= p || s.wantPos.CompareAndSwap(w, p) {
			break
		}
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
