package graph

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// receiver is what pump drains: an *eventstore.Subscription or a
// projections.OrderSubscription.
type receiver[T any] interface {
	Recv(ctx context.Context) (T, error)
	Lag() int64
	Close()
}

// pump delivers a subscription's values on a channel, in order, until ctx
// ends or the subscription fails. It follows gqlgen's recipe: one goroutine
// owns the channel and closes it, and every send also watches ctx, so the
// goroutine never outlives the client. It always closes sub.
//
// The channel is unbuffered and the store subscription holds no buffer of its
// own, so a client that stops reading costs one event of memory and lags only
// its own cursor (guarantee 7). A send blocks only once the client's socket
// buffers are full, that is when it does not read. While blocked, the lag is
// checked every Limits.SlowCheckInterval: a client more than
// Limits.SubscriberMaxLag positions behind whose lag did not shrink since the
// previous check is ended with SUBSCRIBER_TOO_SLOW, rather than anything
// being skipped; it can resubscribe from the last position it received. A
// client catching up from far back is behind too, but its lag shrinks, so it
// is left alone. (This is why the store's own MaxLag, which would end such a
// client at once, is not used.)
//
// Under the endpoint there is no pump: the response interceptor drains the
// subscription itself (directFeed, see fanout.go), which saves a goroutine
// and a hand-over per event and lets subscribers share encodings.
func pump[T any](ctx context.Context, r *Resolver, sub receiver[T]) <-chan *T {
	if h, ok := ctx.Value(subEndKey{}).(*subEnd); ok && h.direct && h.feed == nil {
		f := newDirectFeed(r, sub)
		h.feed = f
		// Whoever ends the operation, the store subscription goes with it.
		context.AfterFunc(ctx, sub.Close)
		return f.ch
	}
	ch := make(chan *T)
	maxLag, every := r.Limits.maxLag(), r.Limits.slowCheck()
	go func() {
		defer close(ch)
		defer sub.Close()
		var tick *time.Ticker
		defer func() {
			if tick != nil {
				tick.Stop()
			}
		}()
		lastLag := int64(-1) // lag at the previous check; -1 = none yet
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
				continue
			case <-ctx.Done():
				return
			default:
			}
			// The client is not reading right now: wait for it, but not
			// while it falls ever further behind.
			if tick == nil {
				tick = time.NewTicker(every)
			} else {
				tick.Reset(every)
			}
			for sent := false; !sent; {
				select {
				case ch <- &v:
					sent = true
				case <-ctx.Done():
					return
				case <-tick.C:
					lag := sub.Lag()
					if maxLag > 0 && lag > maxLag && lastLag >= 0 && lag >= lastLag {
						endSubscription(ctx, r.log(), eventstore.ErrSubscriberTooSlow)
						return
					}
					lastLag = lag
				}
			}
		}
	}()
	return ch
}

// subEnd carries the error that ended a subscription from its pump to the
// response interceptor, which sends it as a final payload with errors before
// the transport completes the operation. gqlgen has no transport-neutral way
// to end a subscription with an error; this works the same over websocket
// and SSE.
type subEnd struct {
	mu  sync.Mutex
	err error

	// The rest is used by the goroutine that runs the operation's
	// response handler, which also runs its resolver.
	direct   bool            // the interceptor drains a feed; set by InterceptOperation
	feed     feed            // set by pump when direct
	shape    *shape          // the shared encodings, once known
	unshared bool            // the operation cannot share encodings
	ended    bool            // the feed ended and that was reported
	corked   *coalescingConn // corked while the feed has events ready

	ws   *wsConn          // the websocket it runs on, if any; see wsconn.go
	slot *deferSlot       // its slot on ws, once it has shared an encoding
	resp graphql.Response // reused for responses with a placeholder
}

// cork holds the websocket's writes while the feed has more events ready,
// so that they leave in one system call; uncork lets them go. See
// coalescingConn.cork.
func (h *subEnd) cork() {
	if h.corked != nil || h.feed.buffered() == 0 {
		return
	}
	if h.ws != nil && h.ws.out != nil {
		h.corked = h.ws.out
		h.corked.cork()
	}
}

// deferred returns a response that stands for data, which WriteJSON sends
// in its place; see wsconn.go. gqlgen is done with the previous response
// when it asks for the next, so one is reused.
func (h *subEnd) deferred(ctx context.Context, data []byte) *graphql.Response {
	if h.slot == nil {
		ws, s := h.ws, h.ws.newSlot()
		h.slot = s
		context.AfterFunc(ctx, func() { ws.dropSlot(s) })
	}
	h.resp = graphql.Response{Data: h.slot.put(data)}
	return &h.resp
}

func (h *subEnd) uncork() {
	if h.corked != nil {
		h.corked.uncork()
		h.corked = nil
	}
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

// connState is the state of one websocket connection that its operations
// share.
type connState struct {
	subscriptions atomic.Int64
	ws            atomic.Pointer[wsConn] // set once accepted
}

type connStateKey struct{}

// subscriptionGuard is a gqlgen extension that limits subscriptions per
// websocket connection and reports how a subscription ended.
type subscriptionGuard struct {
	maxPerConn int
	present    graphql.ErrorPresenterFunc
	fanout     *fanout // nil = no shared encodings
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
	if c, ok := ctx.Value(connStateKey{}).(*connState); ok {
		if c.subscriptions.Add(1) > int64(g.maxPerConn) {
			c.subscriptions.Add(-1)
			err := &codedError{code: CodeTooManySubscriptions,
				msg: fmt.Sprintf("at most %d subscriptions may be active on one connection", g.maxPerConn)}
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{g.present(ctx, err)}})
		}
		// The websocket transport cancels an operation's context when it
		// ends, however it ends.
		context.AfterFunc(ctx, func() { c.subscriptions.Add(-1) })
	}
	return next(context.WithValue(ctx, subEndKey{}, &subEnd{direct: true, ws: wsOf(ctx)}))
}

func (g subscriptionGuard) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if h, ok := ctx.Value(subEndKey{}).(*subEnd); ok && h.feed != nil {
		return g.respond(ctx, h, next)
	}
	resp := next(ctx)
	if resp != nil {
		return resp
	}
	h, ok := ctx.Value(subEndKey{}).(*subEnd)
	if !ok {
		return nil
	}
	if err := h.take(); err != nil {
		return &graphql.Response{Errors: gqlerror.List{g.present(ctx, err)}}
	}
	return nil
}
