package graph

import "context"

// Test hooks on the admission of websocket messages (websocket.go): tests
// hold the body budget and observe that a message's reader waits for it.

// HoldBodyBudget takes all of e's body budget; release gives it back.
func HoldBodyBudget(e *Endpoint) (release func()) {
	n := 2 * e.cfg.MaxBodyBytes
	_ = e.bodies.Acquire(context.Background(), n)
	return func() { e.bodies.Release(n) }
}

// WebsocketAdmitting is how many websocket readers wait for the admission
// of a large message before they read the rest of it.
func WebsocketAdmitting(e *Endpoint) int64 { return e.ws.Admitting() }
