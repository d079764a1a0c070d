package eventstore

import (
	"sync"
	"sync/atomic"
	"time"
)

// Batched wake-ups.
//
// A subscription waiting for new events is woken by every commit. For a few
// subscribers that is what we want; for thousands of websocket subscribers
// of a busy log it is the largest cost of fan-out: each commit wakes every
// one of them to deliver one event, and each such delivery costs a
// goroutine switch and a socket write (a system call, on the order of 5 µs
// on loopback here, paid again by the client to read it). So subscriptions
// that ask for it (SubscribeOptions.Batched) are woken by a waker instead,
// which coalesces commits:
//
//   - a commit after a quiet spell (nothing woken for a window) wakes them at
//     once, so a lone event is not delayed;
//   - later commits within the window wake them together, when the window
//     since the previous wake-up has passed.
//
// The window grows with the number of batched subscriptions, batchPerSub
// each up to batchMax: with n subscribers the wake-ups of all of them come to
// at most 1/batchPerSub per second whatever n is, and a subscriber's latency
// grows by at most the window. Catch-up is unaffected (a subscription behind
// the head reads on without waiting), and so is what is delivered: only when.
// Subscriptions that are not batched, such as the projector's, are woken by
// every commit as before, so read-your-writes never waits for a window.
const (
	batchPerSub = 30 * time.Microsecond
	batchMax    = 100 * time.Millisecond
)

// wakeShards spreads the waiters over several channels. Thousands of
// goroutines waiting on one channel all take its lock twice per wake-up
// (to park and, in select, to unpark), which showed as the largest part of
// a subscription's cost per wake-up.
const wakeShards = 64

// waker wakes batched subscriptions; see above.
type waker struct {
	subs atomic.Int64 // live batched subscriptions
	gen  atomic.Pointer[wakeGen]

	mu    sync.Mutex
	armed bool      // the timer will wake
	last  time.Time // the previous wake-up
	timer *time.Timer
}

// wakeGen is the channels of one wake-up: all are closed by it.
type wakeGen struct{ ch [wakeShards]chan struct{} }

func newWakeGen() *wakeGen {
	g := &wakeGen{}
	for i := range g.ch {
		g.ch[i] = make(chan struct{})
	}
	return g
}

func newWaker() *waker {
	w := &waker{}
	w.gen.Store(newWakeGen())
	w.timer = time.AfterFunc(time.Hour, w.wake)
	w.timer.Stop()
	return w
}

// window is how far apart wake-ups are held while commits keep coming.
func (w *waker) window() time.Duration {
	return min(batchMax, time.Duration(w.subs.Load())*batchPerSub)
}

// wait returns a channel closed at the next wake-up; shard spreads the
// waiters. Callers take it before they look for events, so that a commit
// after the look always wakes them.
func (w *waker) wait(shard uint32) <-chan struct{} {
	return w.gen.Load().ch[shard%wakeShards]
}

// notify is called after every commit.
func (w *waker) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.armed {
		return // the coming wake-up covers this commit too
	}
	if wait := w.window() - time.Since(w.last); wait > 0 {
		w.armed = true
		w.timer.Reset(wait)
		return
	}
	w.wakeLocked()
}

func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakeLocked()
}

func (w *waker) wakeLocked() {
	w.armed = false
	w.last = time.Now()
	old := w.gen.Swap(newWakeGen())
	for _, ch := range old.ch {
		close(ch)
	}
}
