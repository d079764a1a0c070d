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
// projections) drained by one goroutine into an unbuffered channel that
// gqlgen's transport reads (subscriptions.go). The goroutine owns the channel
// and closes it; every send also watches the request context, so a client that
// goes away ends it at once. The store subscription holds no buffer, so a slow
// client only lags its cursor and never blocks writers or other subscribers
// (guarantee 7); once it is more than Limits.SubscriberMaxLag positions behind
// it is ended with SUBSCRIBER_TOO_SLOW, and it can resubscribe from the last
// position it saw without losing anything.
//
// # The endpoint
//
// Endpoint (endpoint.go) builds gqlgen's handler.New with one explicit
// transport per protocol, and wraps it with the HTTP rules gqlgen leaves to the
// application: body limit, origin checks for websockets, a cap on long-lived
// connections, per-connection subscription limits, and a graceful shutdown
// that closes websockets with 1001 so that clients reconnect and resume.
package graph

import (
	"log/slog"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// Resolver is the root resolver: it holds the dependencies, and each type's
// resolver embeds it.
type Resolver struct {
	Store       *eventstore.Store
	Projections *projections.Service
	Log         *slog.Logger // nil = slog.Default()
	Limits      Limits
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
