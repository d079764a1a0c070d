package eventstore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// relearnTries bounds how often the writer looks at the beacons for the
// commit that beat it before it reads the log instead. The winner announces
// its commit one round trip after writing it, so a few short waits are
// usually enough; a winner that died before announcing is found in the log.
const (
	relearnTries = 10
	relearnWait  = 5 * time.Millisecond
)

// relearn brings the image up to the log before the writer plans a batch
// again. After a lost race (conflict) it needs the commit that won, which the
// winner announces in its beacon; reading the log is a scan on FerretDB, so
// a writer that re-read the log after every lost race would fall ever further
// behind a busy peer. After an unknown outcome (dirty) only the log can say
// what was written. Otherwise (a caller expects a version this image does not
// have yet) the beacons suffice when they account for every acknowledged
// commit.
func (s *Store) relearn(conflict, dirty bool, attempt int) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.readTimeout)
	defer cancel()
	if conflict && attempt > 1 && !s.contending.Load() {
		// Lost twice in a row: ask the peers to hold back their next
		// batch until we have had our turn (see holdBack).
		s.contending.Store(true)
		if err := s.announce(ctx, false); err != nil {
			return classify(err)
		}
	}
	for try := 0; !dirty && try < relearnTries; try++ {
		before := s.img.head.Load()
		var complete bool
		var err error
		if conflict {
			// One round trip for heads and recent commits: the shorter
			// the time from learning the head to writing after it, the
			// likelier the write wins.
			var v peerView
			v, err = s.readBeacons(ctx, true)
			complete = v.allEvery && !v.died && s.img.head.Load() >= v.head
		} else {
			_, complete, err = s.catchUp(ctx)
		}
		if err != nil {
			return err
		}
		if conflict && s.img.head.Load() > before || !conflict && complete {
			return nil
		}
		if !conflict {
			break
		}
		select {
		case <-time.After(relearnWait):
		case <-ctx.Done():
			return classify(ctx.Err())
		}
	}
	_, err := s.pull(ctx)
	return err
}

// holdBack delays the next batch while a peer that kept losing races for
// positions takes its turn, up to maxYield.
func (s *Store) holdBack() {
	if s.contending.Load() || !s.peerContending.Load() {
		return // nobody waits, or we are the one waiting for a turn
	}
	start := time.Now()
	for time.Since(start) < maxYield && s.ctx.Err() == nil {
		if _, err := s.readBeacons(s.ctx, false); err != nil || !s.peerContending.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stopContending withdraws a request to hold back that outlived its batch.
func (s *Store) stopContending() {
	if s.contending.Swap(false) {
		ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
		_ = s.announce(ctx, false)
		cancel()
	}
}

// probeInterval is how often a store found unreachable is pinged.
const probeInterval = 250 * time.Millisecond

// storeFailed notes an error of a store round trip. If the store did not
// answer, appends fail fast (see runWriter) until the prober reaches it again.
func (s *Store) storeFailed(err error) {
	if !errors.Is(err, ErrStoreUnavailable) || s.ctx.Err() != nil {
		return
	}
	if s.down.CompareAndSwap(false, true) {
		s.log.Warn("store unreachable: failing appends fast until it answers again", "err", err)
		select {
		case s.probe <- struct{}{}:
		default:
		}
	}
}

// runProber pings the store while it is marked unreachable and clears the
// mark when it answers.
func (s *Store) runProber() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.probe:
		}
		since := time.Now()
		for s.down.Load() {
			ctx, cancel := context.WithTimeout(s.ctx, time.Second)
			err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err()
			cancel()
			if err == nil {
				s.down.Store(false)
				s.log.Info("store reachable again", "after", time.Since(since).Round(time.Millisecond))
				break
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(probeInterval):
			}
		}
	}
}
