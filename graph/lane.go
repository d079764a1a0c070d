package graph

import (
	"context"
	"runtime"

	"golang.org/x/sync/semaphore"
)

// The heavy lane: requests whose CPU grows with their document or their data
// run at most half the cores at a time, so that however many clients send
// them, cheap requests always find a free core. Without it, eight clients
// looping over the most expensive requests the limits allow took a `{
// headPosition }` p99 from 4 ms to 204 ms (cmd/abusebench -exclude verify).
// A request is heavy when its body is over heavyBody bytes (decoding it),
// its document has heavyFields fields or more (validating it), or its
// complexity is heavyComplexity or more (executing it). Cheap requests never
// touch the lane. The lane is entered after the rate limit and the linear
// count, so a refused request never waits in it.
const (
	heavyBody       = 64 << 10
	heavyFields     = 50
	heavyComplexity = 1000
)

func newHeavyLane() *semaphore.Weighted {
	return semaphore.NewWeighted(int64(max(1, runtime.GOMAXPROCS(0)/2)))
}

// laneTicket is one request's place in the lane, carried in its context
// from the transport (which leaves the lane when the response is written) to
// the gates that find the request heavy.
type laneTicket struct {
	lane *semaphore.Weighted
	held bool
}

type laneKey struct{}

func withTicket(ctx context.Context, t *laneTicket) context.Context {
	return context.WithValue(ctx, laneKey{}, t)
}

// enterLane waits for the lane if ctx carries a ticket not yet in it. If
// the client gives up first the request goes on outside the lane: its
// context is done, so it stops at the next check anyway.
func enterLane(ctx context.Context) {
	t, _ := ctx.Value(laneKey{}).(*laneTicket)
	if t == nil || t.held {
		return
	}
	t.held = t.lane.Acquire(ctx, 1) == nil
}

func (t *laneTicket) leave() {
	if t.held {
		t.lane.Release(1)
		t.held = false
	}
}
