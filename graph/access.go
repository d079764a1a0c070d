package graph

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/hindsight-dev/hindsight/auth"
)

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
