package graph

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"golang.org/x/sync/semaphore"
)

// The heavy lane: requests whose CPU grows with their document or their data
// run at most half the cores at a time, so that however many clients send
// them, cheap requests always find a free core. Without it, eight clients
// looping over the most expensive requests the limits allow took a `{
// headPosition }` p99 from 4 ms to 204 ms (cmd/abusebench -exclude verify).
//
// A request is heavy when its body is over heavyBody bytes (decoding it),
// its document is over heavyQuery bytes (parsing it: the 9,990-token list
// argument of cmd/abusebench, 48 KiB, took 10 ms of CPU) or has heavyFields
// fields or more (validating it), or its complexity is heavyComplexity or
// more (executing it). Cheap requests never
// touch the lane. The lane is entered after the rate limit and the linear
// count, so a refused request never waits in it.
//
// The lane is one gqlgen extension (heavyLane) plus the document gate that
// measures a document, so it holds for every transport alike: plain POST and
// GET, websockets and both modes of SSE. An operation holds it while its
// document is validated and while a query or mutation executes, and never
// for the lifetime of a subscription: a subscription leaves the lane once its
// document is validated, and its events never enter it. Only decoding a
// large body happens before gqlgen, in the transport (enterBodyLane).
//
// While operations wait for it, the lane rests between one heavy part and
// the next (lanerest.go), so that heavy work takes at most a share of the
// time (HINDSIGHT_HEAVY_SHARE).
const (
	heavyBody       = 64 << 10
	heavyQuery      = 16 << 10
	heavyFields     = 50
	heavyComplexity = 1000
)

// heavyLane is the lane and the extension that admits operations to it.
type heavyLane struct {
	sem  *semaphore.Weighted
	size int64
	prio lowPriority // what heavy executions run at (priority.go)
	// waiting counts the operations waiting for the lane (tests observe
	// that an operation waits instead of timing it).
	waiting atomic.Int64
	// running counts the queries and mutations executing, heavy or not.
	running atomic.Int64
	// rest is what the lane rests after a place is given up while others
	// wait (lanerest.go); resting counts the places resting (tests observe
	// it instead of timing the rest).
	rest    laneRest
	resting atomic.Int64
}

func newHeavyLane(share float64) *heavyLane {
	n := int64(max(1, runtime.GOMAXPROCS(0)/2))
	return &heavyLane{sem: semaphore.NewWeighted(n), size: n, prio: heavyPriority, rest: newLaneRest(share)}
}

// laneTicket is one operation's (or one body's) place in the lane. It is
// given up when the heavy part is done, and at the latest when the context
// it was made for ends, so that no path, a transport's refusal included,
// can keep a place.
type laneTicket struct {
	lane *heavyLane
	stop func() bool

	mu     sync.Mutex
	held   bool
	since  time.Time // when it entered (lanerest.go)
	closed bool      // its context ended: it never enters again
	// execute: the operation is a query or mutation whose execution is
	// heavy (set once it is validated).
	execute bool
	// done runs once, when the ticket is first left or closed: a body's
	// admission (admission.go) ends with its decoding.
	done func()
}

// ticket makes a ticket for ctx; done is its done (nil for none).
func (l *heavyLane) ticket(ctx context.Context, done func()) *laneTicket {
	t := &laneTicket{lane: l, done: done}
	t.stop = context.AfterFunc(ctx, t.close)
	return t
}

// enter waits for the lane unless t is in it. If ctx ends first, the
// operation goes on outside the lane: it stops at its next check anyway.
func (t *laneTicket) enter(ctx context.Context) {
	t.mu.Lock()
	skip := t.held || t.closed
	t.mu.Unlock()
	if skip {
		return
	}
	t.lane.waiting.Add(1)
	err := t.lane.sem.Acquire(ctx, 1)
	t.lane.waiting.Add(-1)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held || t.closed {
		t.lane.sem.Release(1)
		return
	}
	t.held = true
	t.since = t.lane.rest.clock()
}

func (t *laneTicket) isHeld() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held
}

func (t *laneTicket) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held {
		t.lane.release(t.since)
		t.held = false
	}
	if t.done != nil {
		t.done()
		t.done = nil
	}
}

// close gives the place up for good: its context ended.
func (t *laneTicket) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.leave()
}

// release is close for the transport that made the ticket, which also
// drops the context's hook.
func (t *laneTicket) release() {
	t.close()
	t.stop()
}

// The body's ticket rides in the request's context, from the transport that
// decodes the body to the gates that run on the decoded request.
type bodyLaneKey struct{}

// enterBodyLane enters the lane before a transport decodes a body of n
// bytes, if that is heavy. It returns the context to go on with and the
// ticket's release, which the transport defers. decoded, if not nil, runs
// once the body is decoded (when the operation leaves the lane) or at
// release, whichever comes first: a stream's body admission ends there,
// not when the stream does.
func (l *heavyLane) enterBodyLane(ctx context.Context, n int, decoded func()) (context.Context, func()) {
	if l == nil || n <= heavyBody {
		if decoded == nil {
			decoded = func() {}
		}
		return ctx, decoded
	}
	t := l.ticket(ctx, decoded)
	t.enter(ctx)
	return context.WithValue(ctx, bodyLaneKey{}, t), t.release
}

func bodyTicket(ctx context.Context) *laneTicket {
	t, _ := ctx.Value(bodyLaneKey{}).(*laneTicket)
	return t
}

// subscribed marks a subscription that passed validation: its events do
// not look at the lane.
var subscribed = &laneTicket{}

// laneStat names the operation's ticket among its OperationContext's
// extension stats, the per-operation state gqlgen gives extensions.
const laneStat = "HindsightHeavyLane"

// opTicket returns the operation's ticket, made if create and none exists.
func (l *heavyLane) opTicket(ctx context.Context, create bool) *laneTicket {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	oc := graphql.GetOperationContext(ctx)
	if t, ok := oc.Stats.GetExtension(laneStat).(*laneTicket); ok {
		return t
	}
	if !create || l == nil {
		return nil
	}
	t := l.ticket(ctx, nil)
	oc.Stats.SetExtension(laneStat, t)
	return t
}

// enterForValidation is the document gate's: a document of heavyFields
// fields or more waits for the lane before gqlgen validates it, unless its
// body's ticket already holds a place.
func (l *heavyLane) enterForValidation(ctx context.Context) {
	if l == nil {
		return
	}
	if bt := bodyTicket(ctx); bt != nil && bt.isHeld() {
		return
	}
	if t := l.opTicket(ctx, true); t != nil {
		t.enter(ctx)
	}
}

// leaveAll gives up the operation's and its body's places.
func (l *heavyLane) leaveAll(ctx context.Context) {
	if t := bodyTicket(ctx); t != nil {
		t.leave()
	}
	if t := l.opTicket(ctx, false); t != nil && t != subscribed {
		t.leave()
	}
}

func (*heavyLane) ExtensionName() string                   { return "HindsightHeavyLane" }
func (*heavyLane) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs once the document is validated and measured
// (it is the last context mutator, after the complexity limit): decoding and
// validation are done, so the operation leaves the lane, and a query or
// mutation whose complexity is heavy is marked to execute in it. A
// subscription is never marked: its events would hold the lane for as long
// as it lives.
func (l *heavyLane) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	l.leaveAll(ctx)
	if oc.Operation == nil {
		return nil
	}
	if oc.Operation.Operation == ast.Subscription {
		oc.Stats.SetExtension(laneStat, subscribed)
		return nil
	}
	if c := extension.GetComplexityStats(ctx); c != nil && c.Complexity >= heavyComplexity {
		t := l.opTicket(ctx, true)
		t.mu.Lock()
		t.execute = true
		t.mu.Unlock()
	}
	return nil
}

// InterceptResponse executes a marked operation in the lane, at a lower OS
// priority (priority.go), (gqlgen executes a query or mutation when its
// first response is asked for, in whatever goroutine asks: for
// graphql-sse's single connection mode, once its stream is open) and
// leaves the lane after every response, refusals included (DispatchError
// runs the interceptors too).
func (l *heavyLane) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	t := l.opTicket(ctx, false)
	if t == subscribed {
		return next(ctx) // an event: nothing to hold or give up
	}
	prio := lowPriority{} // in place
	if t != nil {
		t.mu.Lock()
		execute := t.execute
		t.execute = false
		t.mu.Unlock()
		if execute {
			t.enter(ctx)
			if l.contended() {
				prio = l.prio
			}
		}
	}
	var resp *graphql.Response
	func() {
		l.running.Add(1)
		defer l.running.Add(-1)
		prio.run(func() { resp = next(ctx) })
	}()
	l.leaveAll(ctx)
	return resp
}

// contended says whether a heavy execution about to start has company: an
// operation executing or waiting for the lane. Only then does it run at
// the lower priority (priority.go), whose locked thread makes a page of
// 1,000 events cost about 3× the CPU: a heavy query alone on the server,
// a client paging through the log, runs at full speed, while under attack
// the other attackers wait for the lane and every heavy execution is
// lowered.
func (l *heavyLane) contended() bool {
	return l.running.Load() > 0 || l.waiting.Load() > 0
}
