package graph

import "context"

// Test hooks on the heavy lane (lane.go): tests hold the lane and observe
// that an operation waits for it, instead of timing anything.

// HoldHeavyLane takes every place of e's heavy lane; release gives them back.
func HoldHeavyLane(e *Endpoint) (release func()) {
	_ = e.lane.sem.Acquire(context.Background(), e.lane.size)
	return func() { e.lane.sem.Release(e.lane.size) }
}

// HeavyLaneWaiting is how many operations wait for e's heavy lane.
func HeavyLaneWaiting(e *Endpoint) int64 { return e.lane.waiting.Load() }

// HeavyLaneFree reports whether no operation holds a place in e's lane.
func HeavyLaneFree(e *Endpoint) bool {
	if !e.lane.sem.TryAcquire(e.lane.size) {
		return false
	}
	e.lane.sem.Release(e.lane.size)
	return true
}

// BodyBudgetFree reports whether no body holds a share of e's body budget
// (admission.go).
func BodyBudgetFree(e *Endpoint) bool {
	n := 2 * e.cfg.MaxBodyBytes
	if !e.bodies.TryAcquire(n) {
		return false
	}
	e.bodies.Release(n)
	return true
}
