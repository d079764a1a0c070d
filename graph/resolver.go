// Package graph serves Hindsight's GraphQL API: gqlgen's generated executor
// (graph/generated, graph/model), the custom scalars (graph/scalar), thin
// hand-written resolvers that translate GraphQL into calls on eventstore and
// projections, and the /graphql endpoint with its transports and limits.
//
// # Resolvers
//
// Each resolver reads its arguments, makes one call and maps the result
// (schema.resolvers.go). Argument rules shared by several fields, such as page
// sizes, cursors and points in time, live in args.go; every error is turned
// into a GraphQL error with extensions.code in one place, errors.go.
//
// # Subscriptions
//
// A subscription is an eventstore.Subscription (or an order subscription of
// projections) that the response interceptor drains itself, in the goroutine
// that runs the operation (subscriptions.go, fanout.go); subscribers of the
// same operation share each event's encoding. The store subscription holds no
// buffer, so a slow client only lags its cursor and never blocks writers or
// other subscribers (guarantee 7); once it is more than
// Limits.SubscriberMaxLag positions behind and not catching up it is ended
// with SUBSCRIBER_TOO_SLOW (slowconsumer.go, the one place that decides), and
// it can resubscribe from the last position it saw without losing anything.
//
// # The endpoint
//
// Endpoint (endpoint.go) builds gqlgen's handler.New with one explicit
// transport per protocol, and wraps it with the HTTP rules gqlgen leaves to the
// application: body limit, origin checks for websockets, a cap on long-lived
// connections (in all, pending per address, per principal: streamlimits.go),
// subscription limits, and a graceful shutdown that closes websockets with 1001
// so that clients reconnect and resume. Websockets and SSE use our own
// transports, graph/wstransport and graph/ssetransport (websocket.go wires
// them).
package graph

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/model"
	"github.com/hindsight-dev/hindsight/projections"
	"github.com/hindsight-dev/hindsight/tlog"
	"golang.org/x/sync/semaphore"
)

// Resolver is the root resolver: it holds the dependencies, and each type's
// resolver embeds it.
type Resolver struct {
	Store       *eventstore.Store
	Projections *projections.Service
	TLog        *tlog.Log    // the verifiable log; nil = none (tlog.resolvers.go)
	Log         *slog.Logger // nil = slog.Default()
	Limits      Limits
	Observer    Observer
	// Build describes this server for the diagnostics query.
	Build BuildInfo

	streams    func() int          // open websocket and SSE connections; set by NewEndpoint
	verifySlot *semaphore.Weighted // one Stream.verify at a time (admission.go); set by NewEndpoint

	slowOnce sync.Once
	slowW    *slowWatch // the slow-consumer policy; see slow
}

// BuildInfo describes the running server.
type BuildInfo struct {
	Version   string // e.g. "v1.2.3 (abc123) go1.26"
	StoreKind string // e.g. "embedded (SQLite)", "mongodb"
}

// Observer receives measurements for metrics. Nil fields are skipped; the
// functions must be cheap and safe for concurrent use.
type Observer struct {
	// Operation is called when a query or mutation has been answered, and
	// when a subscription ends, with its kind ("query", "mutation",
	// "subscription"), how long it took and whether it had errors.
	Operation func(ctx context.Context, kind string, d time.Duration, failed bool)
	// Subscriptions is called with +1 when a subscription starts and -1 when
	// it ends.
	Subscriptions func(delta int)
	// Delivered is called for every event (or order revision) sent to a
	// subscriber.
	Delivered func()
	// Rejected is called for every request or operation refused before
	// execution, with the reason: a limit (MAX_FIELDS, RATE_LIMITED, ...),
	// an error code (GRAPHQL_PARSE_FAILED, FORBIDDEN, ...) or a body rule
	// (BODY_TOO_LARGE, ...).
	Rejected func(ctx context.Context, reason string)
}

// Limits bound what one client can make the server do. The zero value of each
// field means its default.
type Limits struct {
	// SubscriberMaxLag is how many positions a subscriber may fall behind the
	// head before it is ended with SUBSCRIBER_TOO_SLOW (default 10,000;
	// negative = no limit).
	SubscriberMaxLag int64
	// SlowCheckInterval is how often a subscription blocked on a slow client
	// checks its lag (default 1s).
	SlowCheckInterval time.Duration
}

// Defaults of Limits.
const (
	DefaultSubscriberMaxLag  = 10000
	DefaultSlowCheckInterval = time.Second
	DefaultPageSize          = 100
	MaxPageSize              = eventstore.MaxReadLimit
)

func (l Limits) maxLag() int64 {
	switch {
	case l.SubscriberMaxLag == 0:
		return DefaultSubscriberMaxLag
	case l.SubscriberMaxLag < 0:
		return 0 // eventstore: 0 = no limit
	}
	return l.SubscriberMaxLag
}

func (l Limits) slowCheck() time.Duration {
	if l.SlowCheckInterval <= 0 {
		return DefaultSlowCheckInterval
	}
	return l.SlowCheckInterval
}

func (r *Resolver) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// Access checks. Each returns a FORBIDDEN error (or UNAUTHENTICATED without
// a principal, which the endpoint never lets happen) for the resolver to
// return as it is.

var errUnauthenticated = &codedError{code: CodeUnauthenticated, msg: "authentication required: send Authorization: Bearer <credential>"}

func principal(ctx context.Context) (*auth.Principal, error) {
	p := auth.FromContext(ctx)
	if p == nil {
		return nil, errUnauthenticated
	}
	return p, nil
}

// requireRole fails unless the caller has at least role.
func requireRole(ctx context.Context, role auth.Role) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !p.Can(role) {
		return &codedError{code: CodeForbidden, msg: fmt.Sprintf("this operation needs the %s role", role)}
	}
	return nil
}

// allowStream fails unless the caller may use the stream.
func allowStream(ctx context.Context, streamID string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !p.Allows(streamID) {
		return &codedError{code: CodeForbidden, msg: fmt.Sprintf("access to stream %q is forbidden", streamID)}
	}
	return nil
}

// allowOrder fails unless the caller may use the order's stream.
func allowOrder(ctx context.Context, orderID string) error {
	return allowStream(ctx, projections.OrderStreamID(orderID))
}

// allowAllOrders fails unless the caller may use every order stream, for
// operations that aggregate over all orders.
func allowAllOrders(ctx context.Context) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if prefix := projections.OrderStreamID(""); !p.AllowsAllWithPrefix(prefix) {
		return &codedError{code: CodeForbidden, msg: fmt.Sprintf("this operation covers all orders and needs access to every %q stream", prefix)}
	}
	return nil
}

// logScope is how a read of the global log is narrowed to the caller's
// streams: prefix, and when the caller holds several, any of prefixes, which
// the store filters (keep does the same for a subscription). none means no
// stream can match.
type logScope struct {
	prefix   string
	prefixes []string
	keep     func(*eventstore.Event) bool
	none     bool
}

// scopeLog narrows a read of the global log that asked for streams starting
// with want ("" = all) to the caller's prefixes.
func scopeLog(ctx context.Context, want string) (logScope, error) {
	p, err := principal(ctx)
	if err != nil {
		return logScope{}, err
	}
	prefixes, ok := p.Narrow(want)
	switch {
	case !ok:
		return logScope{none: true}, nil
	case len(prefixes) == 0:
		return logScope{prefix: want}, nil
	case len(prefixes) == 1:
		return logScope{prefix: prefixes[0]}, nil
	}
	scoped := &auth.Principal{Prefixes: prefixes}
	return logScope{prefix: want, prefixes: prefixes, keep: func(e *eventstore.Event) bool { return scoped.Allows(e.StreamID) }}, nil
}

// readAll reads a page of the global log (at most opts.Limit events and
// eventstore.MaxPageBytes of data, all from memory but evicted payloads), and
// whether more matching events follow it, from the image's skeleton: a page
// that is short because of its bytes is not the end.
func (r *Resolver) readAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Event, bool, error) {
	events, err := r.Store.ReadAll(ctx, opts)
	if err != nil || len(events) == 0 {
		return events, false, err
	}
	opts.After = events[len(events)-1].Position
	return events, r.Store.MoreAfter(opts), nil
}

// scopedSubscription drops the events keep rejects.
type scopedSubscription struct {
	*eventstore.Subscription
	keep func(*eventstore.Event) bool
}

func (s scopedSubscription) Recv(ctx context.Context) (eventstore.Event, error) {
	for {
		e, err := s.Subscription.Recv(ctx)
		if err != nil || s.keep(&e) {
			return e, err
		}
	}
}

// observed counts what a subscription hands to its pump.
type observed[T any] struct {
	receiver[T]
	delivered func()
}

func (o observed[T]) Buffered() int { return bufferedOf(o.receiver) }

func (o observed[T]) Recv(ctx context.Context) (T, error) {
	v, err := o.receiver.Recv(ctx)
	if err == nil {
		o.delivered()
	}
	return v, err
}

// deliver is pump with the Delivered observer.
func deliver[T any](ctx context.Context, r *Resolver, sub receiver[T]) <-chan *T {
	if r.Observer.Delivered != nil {
		sub = observed[T]{receiver: sub, delivered: r.Observer.Delivered}
	}
	return pump[T](ctx, r, sub)
}

// diagnostics gathers the state of this instance for the diagnostics query.
func (r *Resolver) diagnostics() *model.Diagnostics {
	s := r.Store.Stats()
	d := &model.Diagnostics{
		Version: r.Build.Version, StoreKind: r.Build.StoreKind, Ready: s.Ready,
		HeadPosition: s.HeadPosition, Streams: s.Streams, ResidentEvents: s.ResidentEvents,
		ResidentBytes: int(s.ResidentBytes), Subscribers: int(s.Subscribers),
	}
	if p := r.Store.Problem(); p != "" {
		d.StoreProblem = &p
	}
	if r.streams != nil {
		d.StreamConnections = r.streams()
	}
	if r.Projections != nil {
		ps := r.Projections.Stats()
		d.Projectors = append(d.Projectors, model.ProjectorCheckpoint{
			Name: "orders", Checkpoint: ps.Checkpoint, Lag: int(ps.Lag), Ready: ps.Ready,
		})
		d.DeclaredProjections = r.Projections.Declarative().Running()
	}
	return d
}
