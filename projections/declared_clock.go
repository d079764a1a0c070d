package projections

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// callClock is the time limit of a program's calls: one context and one
// timer reused by every call, because a context.WithTimeout per call (a
// timer, a cancel tree, allocations) cost about a twentieth of a simple
// reducer's fold.
//
// gojq checks for cancellation before every instruction it runs, with
// select on ctx.Done(), calling Done each time. A select on a channel that
// is open costs a channel receive; on a nil channel it costs nothing. So
// Done is nil until the limit passes and a closed channel from then on:
// that check was an eighth of a simple reducer's fold. The fault tests'
// reducer that never ends proves gojq still sees the limit.
//
// A timer that fired just as a call ended can, rarely, end the next call
// early; a timed-out call is tried again, so that costs only time.
type callClock struct {
	fired   atomic.Bool
	mu      sync.Mutex // running, against the timer's goroutine
	running bool
	timer   *time.Timer
}

// closedDone is Done once the limit has passed.
var closedDone = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func newCallClock() *callClock {
	c := &callClock{}
	c.timer = time.AfterFunc(time.Hour, c.fire)
	c.timer.Stop()
	return c
}

func (c *callClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.fired.Store(true)
	}
}

// arm starts a call with limit d and returns its context.
func (c *callClock) arm(d time.Duration) context.Context {
	c.mu.Lock()
	c.fired.Store(false)
	c.running = true
	c.mu.Unlock()
	c.timer.Reset(d)
	return clockCtx{c}
}

// disarm ends the call: until the next arm, the context is not done (a
// reducerStream's run goes on between its inputs).
func (c *callClock) disarm() {
	c.timer.Stop()
	c.mu.Lock()
	c.running = false
	c.fired.Store(false)
	c.mu.Unlock()
}

// context is the context every call of this clock runs under: a stream's
// one gojq run sees each of its inputs' time limits through it.
func (c *callClock) context() context.Context { return clockCtx{c} }

// clockCtx is the context of the call in progress.
type clockCtx struct{ c *callClock }

func (clockCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (clockCtx) Value(any) any               { return nil }

func (x clockCtx) Done() <-chan struct{} {
	if x.c.fired.Load() {
		return closedDone
	}
	return nil
}

func (x clockCtx) Err() error {
	if x.c.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}
