package graph

import (
	"sync"
	"time"
)

// The slow-consumer policy, the one place it is decided (guarantee 7).
//
// A subscription holds no buffer: the store subscription is a cursor, and
// the transport writes an event to the client's socket before it takes the
// next. A client that reads slowly, or not at all, only lags its own cursor;
// writers and other subscribers never wait for it. What the server holds for
// it is bounded by the transport: one pending write buffer and the kernel's
// socket buffers.
//
// Every SlowCheckInterval one goroutine looks at the lag of every subscription
// (positions behind the head, as the store counts what it has handed over).
// One more than SubscriberMaxLag behind whose lag did not shrink since the
// previous look is ended with SUBSCRIBER_TOO_SLOW: its store subscription is
// closed at once, which frees its cursor, and the client gets the error as
// the last payload once its socket takes it (if it never does, the write
// deadline drops the connection). It can resubscribe from the last position
// it received and lose nothing. A subscriber catching up from far behind is
// behind too, but its lag shrinks, so it is left alone. (This is why the
// store's own MaxLag, which would end such a subscriber at once, is not
// used.) The same holds whatever carries the subscription, websocket or SSE,
// since the policy looks only at the store's cursor.
//
// A subscription that is in Recv at a check waits for the store, not for its
// client: a catch-up from far back reads evicted events from the store, and
// on FerretDB one such read of a 16,384-event log took over two checks
// (BenchmarkCatchUp/store), so the subscriber was ended before its first
// event. Such a check gives no verdict; it only notes the lag for the next.

// slowWatch watches the subscriptions of one Resolver.
type slowWatch struct {
	maxLag int64 // 0 = no limit
	every  time.Duration

	mu      sync.Mutex
	subs    map[*watched]struct{}
	running bool // the checking goroutine runs; it stops when subs is empty
}

type watched struct {
	lag     func() int64
	reading func() bool // in the store's Recv; nil: never asked
	end     func()
	last    int64 // lag at the previous check; -1 = none yet
}

// slow returns the Resolver's slowWatch.
func (r *Resolver) slow() *slowWatch {
	r.slowOnce.Do(func() {
		r.slowW = &slowWatch{maxLag: r.Limits.maxLag(), every: r.Limits.slowCheck(), subs: map[*watched]struct{}{}}
	})
	return r.slowW
}

// watch adds a subscription: lag reports how far behind it is, end ends it
// (called at most once, from the checking goroutine). The returned function
// removes it.
func (s *slowWatch) watch(lag func() int64, end func()) (unwatch func()) {
	return s.watchReading(lag, nil, end)
}

// watchReading is watch for a subscription that reports, with reading, when
// it waits for the store rather than for its client.
func (s *slowWatch) watchReading(lag func() int64, reading func() bool, end func()) (unwatch func()) {
	w := &watched{lag: lag, reading: reading, end: end, last: -1}
	s.mu.Lock()
	s.subs[w] = struct{}{}
	if !s.running && s.maxLag > 0 {
		s.running = true
		go s.run()
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, w)
		s.mu.Unlock()
	}
}

func (s *slowWatch) run() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for range t.C {
		if !s.check() {
			return
		}
	}
}

// check looks at every watched subscription once and ends those too slow. It
// reports false, and marks the checking goroutine stopped, when there is
// nothing left to watch.
func (s *slowWatch) check() bool {
	s.mu.Lock()
	if len(s.subs) == 0 {
		s.running = false
		s.mu.Unlock()
		return false
	}
	var slow []*watched
	for w := range s.subs {
		lag := w.lag()
		if w.reading != nil && w.reading() {
			w.last = lag // waiting for the store: no verdict
			continue
		}
		if lag > s.maxLag && w.last >= 0 && lag >= w.last {
			slow = append(slow, w)
			delete(s.subs, w)
		}
		w.last = lag
	}
	s.mu.Unlock()
	for _, w := range slow {
		w.end()
	}
	return true
}

// lags calls f with the lag of every watched subscription.
func (s *slowWatch) lags(f func(int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.subs {
		f(w.lag())
	}
}
