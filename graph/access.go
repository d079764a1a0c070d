package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/hindsight-dev/hindsight/auth"
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

// ReasonHost is the rejection reason of a Host header not allowed.
const ReasonHost = "HOST"

// hostAllowed reports whether r's Host may be served: always when
// credentials are required, else only loopback names and AllowedHosts.
func (e *Endpoint) hostAllowed(r *http.Request) bool {
	if e.cfg.Auth.Required() {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	for _, a := range e.cfg.AllowedHosts {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}
