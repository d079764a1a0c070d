package graph

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/hindsight-dev/hindsight/auth"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Close codes of websockets refused at connection_init (graphql-transport-ws
// uses the HTTP status plus 4000).
const (
	closeUnauthorized = 4401
	closeForbidden    = 4403
)

type upgradeRequestKey struct{}

// authenticate turns an Authorization header into a principal. In mode none
// it is an anonymous admin named after the client's address, so that rate
// limits apply per client.
func (e *Endpoint) authenticate(ctx context.Context, r *http.Request, header string) (*auth.Principal, error) {
	if !e.cfg.Auth.Required() {
		p, err := e.cfg.Auth.Authenticate(ctx, "")
		if err != nil || r == nil {
			return p, err
		}
		anon := *p
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			anon.Subject += "@" + host
		}
		return &anon, nil
	}
	if header == "" {
		return nil, fmt.Errorf("%w: send Authorization: Bearer <credential>", auth.ErrUnauthenticated)
	}
	cred, ok := auth.BearerToken(header)
	if !ok {
		return nil, fmt.Errorf("%w: the Authorization header must be Bearer <credential>", auth.ErrUnauthenticated)
	}
	return e.cfg.Auth.Authenticate(ctx, cred)
}

// authenticateWebsocket is gqlgen's websocket InitFunc: the credential comes
// in the connection_init payload, {"Authorization": "Bearer ..."} (browsers
// cannot set headers on a websocket), or else from the upgrade request's
// Authorization header. A failure closes the connection with 4401
// (authentication failed) or 4403 (forbidden).
func (e *Endpoint) authenticateWebsocket(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	r, _ := ctx.Value(upgradeRequestKey{}).(*http.Request)
	header := payload.Authorization()
	if header == "" && r != nil {
		header = r.Header.Get("Authorization")
	}
	p, err := e.authenticate(ctx, r, header)
	if err != nil {
		code, reason := closeUnauthorized, "Unauthorized"
		if errors.Is(err, auth.ErrForbidden) {
			code, reason = closeForbidden, "Forbidden"
		}
		e.log.InfoContext(ctx, "websocket refused", "request_id", RequestID(ctx), "close_code", code, "reason", err)
		ctx = transport.WithWebsocketCloseCode(ctx, code)
		ctx = transport.AppendCloseReason(ctx, reason)
		return ctx, nil, err
	}
	return auth.WithPrincipal(ctx, p), nil, nil
}

// accessGuard checks, once per operation, that the principal's role allows
// the operation's kind (mutations need writer, queries and subscriptions
// reader) and takes a token from its rate limit. Stream prefixes are checked
// by the resolvers, which know the streams.
type accessGuard struct {
	limiter *auth.RateLimiter
}

func (accessGuard) ExtensionName() string                   { return "HindsightAccess" }
func (accessGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g accessGuard) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	p := auth.FromContext(ctx)
	if p == nil {
		return &gqlerror.Error{Message: errUnauthenticated.msg, Extensions: map[string]any{"code": CodeUnauthenticated}}
	}
	if oc.Operation == nil {
		return nil
	}
	need := auth.Reader
	if oc.Operation.Operation == ast.Mutation {
		need = auth.Writer
	}
	if !p.Can(need) {
		return &gqlerror.Error{Message: fmt.Sprintf("%ss need the %s role", oc.Operation.Operation, need),
			Extensions: map[string]any{"code": CodeForbidden}}
	}
	if g.limiter != nil {
		if ok, wait := g.limiter.Allow(p.Subject); !ok {
			return &gqlerror.Error{Message: "rate limit exceeded; retry later",
				Extensions: map[string]any{"code": CodeRateLimited, "retryAfterSeconds": math.Ceil(wait.Seconds()*1000) / 1000}}
		}
	}
	return nil
}
