package graph

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// operationObserver reports operations to the Observer: the duration of
// each query and mutation, and the start, end and lifetime of each
// subscription. Durations start when the request was read, so that they
// (and the slow-operation log) include parsing and validation.
type operationObserver struct {
	obs Observer
}

func (operationObserver) ExtensionName() string                   { return "HindsightObserver" }
func (operationObserver) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationObserver) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil {
		return next(ctx)
	}
	kind, start := string(oc.Operation.Operation), oc.Stats.OperationStart
	if start.IsZero() {
		start = time.Now()
	}
	if oc.Operation.Operation == ast.Subscription {
		if o.obs.Subscriptions != nil {
			o.obs.Subscriptions(1)
		}
		context.AfterFunc(ctx, func() {
			if o.obs.Subscriptions != nil {
				o.obs.Subscriptions(-1)
			}
			if o.obs.Operation != nil {
				o.obs.Operation(ctx, kind, time.Since(start), false)
			}
		})
		return next(ctx)
	}
	rh := next(ctx)
	var once sync.Once
	return func(ctx context.Context) *graphql.Response {
		resp := rh(ctx)
		once.Do(func() {
			if o.obs.Operation != nil {
				o.obs.Operation(ctx, kind, time.Since(start), resp == nil || len(resp.Errors) > 0)
			}
		})
		return resp
	}
}

// rejected reports a refusal to the Observer.
func (e *Endpoint) rejected(ctx context.Context, reason string) {
	if f := e.cfg.Resolver.Observer.Rejected; f != nil {
		f(ctx, reason)
	}
}

// observeRefusal reports an operation refused before execution (a limit, a
// parse or validation failure) with the time it cost, so that a refusal
// that was slow shows in the duration metric and the slow-operation log,
// as kind "refused".
func observeRefusal(ctx context.Context, obs Observer, start time.Time) {
	if obs.Operation != nil && !start.IsZero() {
		obs.Operation(ctx, "refused", time.Since(start), true)
	}
}
