package graph

import "time"

// The heavy lane's rest. While operations wait for the lane, a place given
// up is not handed on at once: the lane rests first, for (1-share)/share
// times as long as the place was held, so that heavy work takes at most
// share of the lane's time. On these 2 cores, with everything at nice 0 but
// the heavy executions, what delayed a cheap request under attack was not
// the lowered execution itself but the work around it that runs at the
// process's priority: gqlgen's goroutine per list element, reading and
// validating large documents, the garbage collector's marking of what they
// allocated, and the attacking clients and the store, which compete for the
// same cores (cmd/abusebench -trace, README). Resting the lane lowers all
// of them at once, in proportion: at the default share of 0.33, with 8
// clients looping over the worst requests the limits allow, the server's
// CPU fell from 1.6 to 0.8 s per 2 s and a `{ headPosition }` client's
// p99 from 1.91 to 0.63 ms (6.8× to 2.2× idle, 8 of 8 runs within 5×
// against 1 of 8; medians of runs alternating with main on an otherwise
// idle machine; a share of 0.5 measured 0.74 ms against main's 1.43 ms in
// a busier batch), while the attackers got half as many answers.
//
// The rest is taken only with company waiting: a heavy query alone, a client
// paging through the log one page after another, never rests. A place held
// long (a heavy read waiting on a slow store) rests at most maxRest.
type laneRest struct {
	// share is the share of the lane's time heavy work may take while
	// others wait; 0 or 1 (or more) means no rest.
	share float64
	// max bounds one rest.
	max time.Duration
	// now and after are a test's clock; nil means time.Now and
	// time.AfterFunc. The zero laneRest never rests.
	now   func() time.Time
	after func(time.Duration, func())
}

// DefaultHeavyShare is the share of the heavy lane's time heavy work may
// take while other operations wait for it (EndpointConfig.HeavyShare).
const DefaultHeavyShare = 0.33

// maxRest bounds one rest of the lane.
const maxRest = 50 * time.Millisecond

func newLaneRest(share float64) laneRest {
	return laneRest{share: share, max: maxRest}
}

func (r laneRest) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// of returns how long the lane rests after a place held for held.
func (r laneRest) of(held time.Duration) time.Duration {
	if r.share <= 0 || r.share >= 1 || held <= 0 {
		return 0
	}
	return min(time.Duration(float64(held)*(1-r.share)/r.share), r.max)
}

// release gives a place held since since back to the lane: at once when no
// operation waits for it, else after the lane's rest.
func (l *heavyLane) release(since time.Time) {
	if l.waiting.Load() > 0 {
		if d := l.rest.of(l.rest.clock().Sub(since)); d > 0 {
			l.resting.Add(1)
			wake := func() {
				l.resting.Add(-1)
				l.sem.Release(1)
			}
			if l.rest.after != nil {
				l.rest.after(d, wake)
			} else {
				time.AfterFunc(d, wake)
			}
			return
		}
	}
	l.sem.Release(1)
}
