package graph

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/wstransport"
)

// receiver is what a subscription resolver hands over: an
// *eventstore.Subscription or a projections.OrderSubscription.
type receiver[T any] interface {
	Recv(ctx context.Context) (T, error)
	Lag() int64
	Close()
}

// pump delivers a subscription's values on the channel gqlgen's executor
// reads, in order, until ctx ends or the subscription fails, and watches it
// with the slow-consumer policy (slowconsumer.go). It always closes sub.
//
// Under the endpoint no goroutine sits between the store and gqlgen: the
// response interceptor drains the subscription itself (directFeed, see
// fanout.go), in the goroutine that runs the operation, which saves a
// goroutine and a hand-over per event and lets subscribers share encodings.
// Without the interceptor (the resolvers used on their own), a goroutine
// follows gqlgen's recipe: it owns the channel and closes it, and every send
// also watches ctx, so it never outlives the client.
func pump[T any](ctx context.Context, r *Resolver, sub receiver[T]) <-chan *T {
	h, _ := ctx.Value(subEndKey{}).(*subEnd)
	rs := &reading[T]{receiver: sub}
	unwatch := r.slow().watchReading(sub.Lag, rs.in.Load, func() {
		endSubscription(ctx, r.log(), eventstore.ErrSubscriberTooSlow)
		sub.Close()
	})
	sub = rs
	// Whoever ends the operation, the store subscription goes with it.
	context.AfterFunc(ctx, func() { unwatch(); sub.Close() })
	if h != nil && h.feed == nil {
		f := &directFeed[T]{sub: sub, ch: make(chan *T, 1)}
		h.feed = f
		return f.ch
	}
	ch := make(chan *T)
	go func() {
		defer close(ch)
		defer sub.Close()
		for {
			v, err := sub.Recv(ctx)
			if err != nil {
				if ctx.Err() == nil {
					endSubscription(ctx, r.log(), err)
				}
				return
			}
			select {
			case ch <- &v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// reading marks the time a subscription spends in Recv, where it waits for
// the store and not for its client (the slow-consumer policy spares it then).
type reading[T any] struct {
	receiver[T]
	in atomic.Bool
}

func (r *reading[T]) Recv(ctx context.Context) (T, error) {
	r.in.Store(true)
	defer r.in.Store(false)
	return r.receiver.Recv(ctx)
}

func (r *reading[T]) Buffered() int { return bufferedOf(r.receiver) }

// subEnd is the state of one subscription that its resolver and the
// response interceptor share; the interceptor puts it in the operation's
// context. It carries the error that ended the subscription (SUBSCRIBER_TOO_SLOW
// from the slow-consumer policy, a store error) to the interceptor, which
// sends it as a final payload with errors before the transport completes the
// operation: gqlgen has no transport-neutral way to end a subscription with
// an error; this works the same over websocket and SSE.
type subEnd struct {
	mu  sync.Mutex
	err error

	// The rest belongs to the goroutine that runs the operation's response
	// handler, which also runs its resolver.
	feed     feed             // set by pump
	shape    *shape           // the shared encodings, once known
	unshared bool             // the operation cannot share encodings
	ended    bool             // the feed ended and that was reported
	resp     graphql.Response // reused for each shared encoding; see respond
}

type subEndKey struct{}

func endSubscription(ctx context.Context, log *slog.Logger, err error) {
	if h, ok := ctx.Value(subEndKey{}).(*subEnd); ok {
		h.mu.Lock()
		if h.err == nil {
			h.err = err
		}
		h.mu.Unlock()
		return
	}
	log.WarnContext(ctx, "subscription ended", "request_id", RequestID(ctx), "err", err)
}

func (h *subEnd) take() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.err
	h.err = nil
	return err
}

// subscriptionGuard is a gqlgen extension that drains subscriptions for
// gqlgen (see fanout.go) and reports how a subscription ended.
type subscriptionGuard struct {
	present graphql.ErrorPresenterFunc
	fanout  *fanout        // nil = no shared encodings
	lim     *streamLimiter // nil = no cap per principal
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = subscriptionGuard{}

func (subscriptionGuard) ExtensionName() string                   { return "HindsightSubscriptions" }
func (subscriptionGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g subscriptionGuard) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	if g.lim != nil {
		if err := g.lim.admitSubscription(ctx, g.present); err != nil {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{err}})
		}
	}
	h := &subEnd{}
	// Over a websocket, the events one wake-up made ready leave in one
	// write.
	wstransport.ReportBacklog(ctx, func() int {
		if h.feed == nil {
			return 0
		}
		return h.feed.buffered()
	})
	return next(context.WithValue(ctx, subEndKey{}, h))
}

func (g subscriptionGuard) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	h, ok := ctx.Value(subEndKey{}).(*subEnd)
	if ok && h.feed != nil {
		return g.respond(ctx, h, next)
	}
	resp := next(ctx)
	if resp != nil || !ok {
		return resp
	}
	if err := h.take(); err != nil {
		return &graphql.Response{Errors: gqlerror.List{g.present(ctx, err)}}
	}
	return nil
}
