package graph

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph/wstransport"
)

// StreamLimits keep clients that hold long-lived connections from crowding out
// the others. HINDSIGHT_MAX_CONNECTIONS caps websockets and SSE streams in
// all; these cap them per client:
//
//   - A websocket that has not sent connection_init is pending. Pending
//     sockets are capped per client address, so that sockets that never
//     authenticate (and reopen after each 4408) cannot take the connections
//     of clients that do: the next one from that address is refused with 429
//     before the upgrade.
//   - Once authenticated, websockets and SSE streams are capped per principal
//     (an API key, a JWT subject, or in auth mode none the client address):
//     one more websocket is closed with 1013 (try again later), one more
//     SSE stream is refused with 429.
//   - Subscriptions are capped per principal across all its connections:
//     one more fails with TOO_MANY_SUBSCRIPTIONS.
type StreamLimits struct {
	MaxPendingPerAddr            int // default 16
	MaxConnectionsPerPrincipal   int // default 100
	MaxSubscriptionsPerPrincipal int // default 1,000
}

// Defaults of StreamLimits.
const (
	DefaultMaxPendingPerAddr            = 16
	DefaultMaxConnectionsPerPrincipal   = 100
	DefaultMaxSubscriptionsPerPrincipal = 1000
)

// closeTryAgainLater closes a websocket over its principal's cap (RFC 6455's
// registry: 1013, try again later); graphql-ws clients retry it with backoff.
const closeTryAgainLater = 1013

// streamLimiter holds the counts.
type streamLimiter struct {
	lim                  StreamLimits
	pending, conns, subs counts
}

func newStreamLimiter(l StreamLimits) *streamLimiter {
	if l.MaxPendingPerAddr <= 0 {
		l.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	if l.MaxConnectionsPerPrincipal <= 0 {
		l.MaxConnectionsPerPrincipal = DefaultMaxConnectionsPerPrincipal
	}
	if l.MaxSubscriptionsPerPrincipal <= 0 {
		l.MaxSubscriptionsPerPrincipal = DefaultMaxSubscriptionsPerPrincipal
	}
	return &streamLimiter{lim: l}
}

// counts counts by key.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one for key if fewer than limit are taken; release gives it
// back, once.
func (c *counts) acquire(key string, limit int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= limit {
		return nil, false
	}
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.n[key]--; c.n[key] <= 0 {
				delete(c.n, key)
			}
		})
	}, true
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

type pendingKey struct{}

// admitPending takes a pending slot for r's address, released by acked or
// when the connection ends; false = refused, and the 429 is written.
func (l *streamLimiter) admitPending(w http.ResponseWriter, r *http.Request) (context.Context, func(), bool) {
	release, ok := l.pending.acquire(clientAddr(r), l.lim.MaxPendingPerAddr)
	if !ok {
		writeError(w, http.StatusTooManyRequests, CodeTooManyConnections,
			fmt.Sprintf("at most %d websockets per client address may wait for connection_init", l.lim.MaxPendingPerAddr))
		return nil, nil, false
	}
	return context.WithValue(r.Context(), pendingKey{}, release), release, true
}

// acked ends the pending state of the websocket of ctx.
func acked(ctx context.Context) {
	if release, ok := ctx.Value(pendingKey{}).(func()); ok {
		release()
	}
}

// admitPrincipal takes a connection slot for p until ctx ends.
func (l *streamLimiter) admitPrincipal(ctx context.Context, p *auth.Principal) bool {
	release, ok := l.conns.acquire(p.Subject, l.lim.MaxConnectionsPerPrincipal)
	if ok {
		context.AfterFunc(ctx, release)
	}
	return ok
}

func (l *streamLimiter) tooManyConnections() error {
	return &codedError{code: CodeTooManyConnections,
		msg: fmt.Sprintf("at most %d websockets and SSE streams per principal; close one or retry later", l.lim.MaxConnectionsPerPrincipal)}
}

// principalConnectionsRefused is the websocket refusal for a principal
// over its cap.
func (l *streamLimiter) principalConnectionsRefused(err error) *wstransport.InitError {
	return &wstransport.InitError{Code: closeTryAgainLater, Reason: "too many connections for this principal", Err: err}
}

// admitSubscription takes a subscription slot of the principal in ctx until
// ctx ends, or returns the error to answer with.
func (l *streamLimiter) admitSubscription(ctx context.Context, present graphql.ErrorPresenterFunc) *gqlerror.Error {
	p := auth.FromContext(ctx)
	if p == nil {
		return nil
	}
	release, ok := l.subs.acquire(p.Subject, l.lim.MaxSubscriptionsPerPrincipal)
	if !ok {
		return present(ctx, &codedError{code: CodeTooManySubscriptions,
			msg: fmt.Sprintf("at most %d subscriptions may be active per principal", l.lim.MaxSubscriptionsPerPrincipal)})
	}
	context.AfterFunc(ctx, release)
	return nil
}
