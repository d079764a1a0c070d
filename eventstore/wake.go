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
// which coalesces commits over a window:
//
//   - a commit after a quiet spell (no commit for a window) wakes them all at
//     once, so a lone event is not delayed;
//   - while commits keep coming, the waker goes round the subscriptions in
//     wakeShards groups, one group every window/wakeShards, and wakes a
//     group if a commit came since its previous turn. So each subscription
//     is woken at most once per window, with every event committed since,
//     and waits at most a window for an event.
//
// Going round in groups, rather than waking everyone once per window, spreads
// the work of delivering over the window: woken all at once, thousands of
// subscribers queued behind each other for the CPU (and their clients with
// them), and the last ones waited far longer than the window.
//
// The window grows with the number of batched subscriptions, batchPerSub
// each up to batchKnee: with n subscribers the wake-ups of all of them come
// to at most 1/batchPerSub (about 33,000) per second whatever n is, until
// the window reaches the knee (at 3,334 subscribers; beyond, n/batchKnee).
// From twice that many on, the window grows again, batchPerSubAbove each up
// to batchMax: a wake-up and its socket write cost about ten times as much as
// one more event in it, and at 10,000 subscribers 100,000 wake-ups a second
// (a 100 ms window) took half the server's CPU, and the machine's other core
// was the clients'. Then the queue for the CPU, not the window, made the
// latency (p99 480 ms); with 150 ms, a third fewer wake-ups. A subscriber's
// latency grows by at most the window. Catch-up is unaffected (a
// subscription behind the head reads on without waiting), and so is what is
// delivered: only when.
// Subscriptions that are not batched, such as the projector's, are woken by
// every commit as before, so read-your-writes never waits for a window.
const (
	batchPerSub      = 30 * time.Microsecond
	batchKnee        = 100 * time.Millisecond
	batchPerSubAbove = 15 * time.Microsecond
	batchMax         = 150 * time.Millisecond
	// wakeShards is how many groups the waker goes round. Each group also
	// has its own channel: thousands of goroutines waiting on one channel
	// all take its lock twice per wake-up (to park and, in select, to
	// unpark), which showed as the largest part of a subscription's cost
	// per wake-up.
	wakeShards = 64
	minStep    = 50 * time.Microsecond
)

// waker wakes batched subscriptions; see above.
type waker struct {
	subs   atomic.Int64 // live batched subscriptions
	shards [wakeShards]atomic.Pointer[wakeCh]

	mu      sync.Mutex
	dirty   [wakeShards]bool // a commit came since the group's last wake-up
	next    int              // the group whose turn is next
	idle    int              // turns in a row that found nothing to do
	running bool             // going round; the timer is armed
	timer   *time.Timer
}

// wakeCh is one group's channel, closed by its next wake-up.
type wakeCh struct{ ch chan struct{} }

func newWaker() *waker {
	w := &waker{}
	for i := range w.shards {
		w.shards[i].Store(&wakeCh{ch: make(chan struct{})})
	}
	w.timer = time.AfterFunc(time.Hour, w.turn)
	w.timer.Stop()
	return w
}

// window is the longest a subscription waits for an event while commits
// keep coming.
func (w *waker) window() time.Duration {
	n := time.Duration(w.subs.Load())
	return min(batchMax, max(min(batchKnee, n*batchPerSub), n*batchPerSubAbove))
}

// step is the time between two groups' turns.
func (w *waker) step() time.Duration { return max(minStep, w.window()/wakeShards) }

// wait returns a channel closed at the next wake-up of group shard.
// Callers take it before they look for events, so that a commit after the
// look always wakes them.
func (w *waker) wait(shard uint32) <-chan struct{} {
	return w.shards[shard%wakeShards].Load().ch
}

// notify is called after every commit.
func (w *waker) notify() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		for i := range w.dirty {
			w.dirty[i] = true
		}
		w.idle = 0
		return
	}
	// A quiet spell ends: wake everyone now, and go round from here on in
	// case more commits follow.
	w.wakeAllLocked()
	if w.window() == 0 {
		return // no batched subscriptions to go round
	}
	w.running, w.idle = true, 0
	w.timer.Reset(w.step())
}

// turn is one group's turn.
func (w *waker) turn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dirty[w.next] {
		w.dirty[w.next] = false
		w.wakeLocked(w.next)
		w.idle = 0
	} else {
		w.idle++
	}
	w.next = (w.next + 1) % wakeShards
	if w.idle >= wakeShards {
		// A whole round without a commit: quiet again.
		w.running = false
		return
	}
	w.timer.Reset(w.step())
}

// wakeAll wakes every group now.
func (w *waker) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wakeAllLocked()
}

func (w *waker) wakeAllLocked() {
	for i := range w.shards {
		w.wakeLocked(i)
	}
}

func (w *waker) wakeLocked(i int) {
	old := w.shards[i].Swap(&wakeCh{ch: make(chan struct{})})
	close(old.ch)
}
