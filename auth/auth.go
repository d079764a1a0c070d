// Package auth decides who a request is and what it may do.
//
// A request carries a bearer credential: an API key (mode apikey) or a JWT
// (mode jwt). An Authenticator turns it into a Principal, which the transport
// puts in the request context (WithPrincipal); the GraphQL layer reads it back
// (FromContext) and enforces:
//
//   - the role, per operation kind: queries and subscriptions need Reader,
//     mutations Writer, admin operations (diagnostics) Admin; each role has
//     the rights of the ones below it;
//   - the stream prefixes, per stream: a principal with prefixes may only read,
//     write and subscribe to streams whose id starts with one of them. A
//     principal without prefixes may use every stream.
//
// In mode none every request is an anonymous admin without prefixes; the
// server refuses to listen on a non-loopback address in that mode unless told
// it is insecure on purpose.
//
// Secrets never leave this package: API keys are compared in constant time
// (over their SHA-256 digests, so neither content nor length leaks through
// timing), and a principal names a key only by a fingerprint, a short prefix
// of its digest, which is safe to log.
package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role is what a principal may do. Roles are ordered: each has the rights of
// the ones below it.
type Role int

// Roles, lowest first. The zero value grants nothing.
const (
	RoleNone Role = iota
	Reader        // queries and subscriptions
	Writer        // plus mutations
	Admin         // plus admin operations
)

func (r Role) String() string {
	switch r {
	case Reader:
		return "reader"
	case Writer:
		return "writer"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole parses "reader", "writer" or "admin".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "reader":
		return Reader, nil
	case "writer":
		return Writer, nil
	case "admin":
		return Admin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want reader, writer or admin)", s)
}

// Principal is an authenticated caller.
type Principal struct {
	// Subject names the caller for logs and rate limits: "anonymous", an API
	// key's fingerprint ("key:1a2b3c4d5e6f") or a JWT's subject ("jwt:alice").
	// It never contains a secret.
	Subject string
	Role    Role
	// Prefixes scope the streams the principal may use; empty means all.
	Prefixes []string
	// Expires is when the credential stops being valid (a JWT's exp);
	// zero means never. A long-lived connection ends then.
	Expires time.Time
}

// Anonymous is the principal of every request in mode none.
var Anonymous = &Principal{Subject: "anonymous", Role: Admin}

// Can reports whether p has at least role r.
func (p *Principal) Can(r Role) bool { return p != nil && p.Role >= r }

// Scoped reports whether p is limited to some streams.
func (p *Principal) Scoped() bool { return p != nil && len(p.Prefixes) > 0 }

// Allows reports whether p may use the stream.
func (p *Principal) Allows(streamID string) bool {
	if p == nil {
		return false
	}
	if len(p.Prefixes) == 0 {
		return true
	}
	for _, pre := range p.Prefixes {
		if strings.HasPrefix(streamID, pre) {
			return true
		}
	}
	return false
}

// AllowsAllWithPrefix reports whether p may use every stream whose id starts
// with prefix, for operations that aggregate over such a family of streams
// (all orders, for example).
func (p *Principal) AllowsAllWithPrefix(prefix string) bool {
	if p == nil {
		return false
	}
	if len(p.Prefixes) == 0 {
		return true
	}
	for _, pre := range p.Prefixes {
		if strings.HasPrefix(prefix, pre) {
			return true
		}
	}
	return false
}

// Narrow returns the stream prefixes that select the streams both p allows
// and that start with want ("" = all streams). ok is false when no stream
// can match both. A nil result with ok true means "no restriction beyond
// want"; otherwise the result lists prefixes to match, at least one of which
// a stream must start with.
func (p *Principal) Narrow(want string) (prefixes []string, ok bool) {
	if p == nil {
		return nil, false
	}
	if len(p.Prefixes) == 0 {
		return nil, true
	}
	for _, pre := range p.Prefixes {
		switch {
		case strings.HasPrefix(want, pre):
			// Every stream starting with want is allowed.
			return nil, true
		case strings.HasPrefix(pre, want):
			prefixes = append(prefixes, pre)
		}
	}
	return prefixes, len(prefixes) > 0
}

// Errors of Authenticate. Both are safe to show to the client.
var (
	// ErrUnauthenticated: no credential, or one that is unknown, malformed,
	// expired or not yet valid.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the credential is genuine but grants nothing usable
	// (for example a token without a known role).
	ErrForbidden = errors.New("forbidden")
)

// Authenticator turns a bearer credential into a Principal. An empty
// credential fails with ErrUnauthenticated unless the mode needs none.
type Authenticator interface {
	Authenticate(ctx context.Context, credential string) (*Principal, error)
	// Required reports whether requests must carry a credential.
	Required() bool
}

// None is mode none: every request is Anonymous.
type None struct{}

// Authenticate returns Anonymous.
func (None) Authenticate(context.Context, string) (*Principal, error) { return Anonymous, nil }

// Required is false.
func (None) Required() bool { return false }

// BearerToken extracts the credential of an Authorization header value
// "Bearer <credential>" (the scheme is case-insensitive). ok is false when
// the header is empty or has another scheme.
func BearerToken(header string) (string, bool) {
	scheme, cred, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

type principalKey struct{}

// WithPrincipal attaches p to ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal attached to ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
