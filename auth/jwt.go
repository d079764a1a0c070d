package auth

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT is mode jwt: tokens signed with HS256 and a shared secret, or with
// RS256 or ES256 and a key pair of which the server holds the public key.
// exp is required; exp and nbf are enforced with a small leeway for clock
// skew. The claims that matter are role ("reader", "writer" or "admin") and
// the optional streams, a list of stream prefixes; sub names the caller.
type JWT struct {
	key     any // []byte for HS256, a crypto.PublicKey otherwise
	methods []string
	parser  *jwt.Parser
}

// Leeway is the clock skew tolerated on exp and nbf.
const Leeway = 30 * time.Second

// NewJWTSecret accepts HS256 tokens signed with secret (at least 32 bytes).
func NewJWTSecret(secret []byte) (*JWT, error) {
	if len(secret) < 32 {
		return nil, errors.New("the JWT secret must be at least 32 bytes")
	}
	return newJWT(secret, []string{"HS256"}), nil
}

// LoadJWTPublicKey accepts RS256 or ES256 tokens (as the PEM key's type
// says) verified with the public key in the PEM file.
func LoadJWTPublicKey(path string) (*JWT, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt public key: %w", err)
	}
	return ParseJWTPublicKey(b)
}

// ParseJWTPublicKey is LoadJWTPublicKey on the PEM bytes.
func ParseJWTPublicKey(pem []byte) (*JWT, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
		return newJWT(crypto.PublicKey(k), []string{"RS256"}), nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pem); err == nil {
		if k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("jwt public key: ES256 needs a P-256 key, got %s", k.Curve.Params().Name)
		}
		return newJWT(crypto.PublicKey(k), []string{"ES256"}), nil
	}
	return nil, errors.New("jwt public key: not a PEM RSA or EC (P-256) public key")
}

func newJWT(key any, methods []string) *JWT {
	return &JWT{key: key, methods: methods, parser: jwt.NewParser(
		jwt.WithValidMethods(methods), // never "none", never the other family
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
	)}
}

type claims struct {
	jwt.RegisteredClaims
	Role    string   `json:"role"`
	Streams []string `json:"streams,omitempty"`
}

// Authenticate verifies the token's signature, exp and nbf, and reads its role
// and streams. A token that fails verification is ErrUnauthenticated; a
// genuine token without a known role is ErrForbidden.
func (j *JWT) Authenticate(_ context.Context, credential string) (*Principal, error) {
	if credential == "" {
		return nil, ErrUnauthenticated
	}
	if err := checkRawToken(credential); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	var c claims
	if _, err := j.parser.ParseWithClaims(credential, &c, func(*jwt.Token) (any, error) { return j.key, nil }); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, fmt.Errorf("%w: the token has expired", ErrUnauthenticated)
		case errors.Is(err, jwt.ErrTokenNotValidYet):
			return nil, fmt.Errorf("%w: the token is not valid yet", ErrUnauthenticated)
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return nil, fmt.Errorf("%w: the token has no exp claim", ErrUnauthenticated)
		}
		return nil, fmt.Errorf("%w: the token is invalid", ErrUnauthenticated)
	}
	role, err := ParseRole(c.Role)
	if err != nil {
		return nil, fmt.Errorf("%w: the token has no valid role claim", ErrForbidden)
	}
	var prefixes []string
	for _, s := range c.Streams {
		if s = strings.TrimSpace(s); s != "" {
			prefixes = append(prefixes, s)
		}
	}
	if c.Streams != nil && len(prefixes) == 0 {
		// An explicit but empty list grants no stream, not every stream.
		return nil, fmt.Errorf("%w: the token's streams claim is empty", ErrForbidden)
	}
	sub := c.Subject
	if sub == "" {
		sub = "-"
	}
	p := &Principal{Subject: "jwt:" + sub, Role: role, Prefixes: prefixes}
	if c.ExpiresAt != nil {
		p.Expires = c.ExpiresAt.Time
	}
	return p, nil
}

// Required is true.
func (j *JWT) Required() bool { return true }

// Config selects and configures an Authenticator.
type Config struct {
	Mode             string // "none" (or empty), "apikey" or "jwt"
	APIKeysFile      string // mode apikey
	JWTSecret        string // mode jwt, HS256
	JWTPublicKeyFile string // mode jwt, RS256 or ES256
}

// New builds the Authenticator cfg describes, failing on an inconsistent or
// unreadable configuration.
func New(cfg Config) (Authenticator, error) {
	switch cfg.Mode {
	case "", "none":
		return None{}, nil
	case "apikey":
		if cfg.APIKeysFile == "" {
			return nil, errors.New("auth mode apikey needs HINDSIGHT_API_KEYS_FILE")
		}
		return LoadAPIKeys(cfg.APIKeysFile)
	case "jwt":
		switch {
		case cfg.JWTSecret != "" && cfg.JWTPublicKeyFile != "":
			return nil, errors.New("auth mode jwt: set HINDSIGHT_JWT_SECRET or HINDSIGHT_JWT_PUBLIC_KEY_FILE, not both")
		case cfg.JWTSecret != "":
			return NewJWTSecret([]byte(cfg.JWTSecret))
		case cfg.JWTPublicKeyFile != "":
			return LoadJWTPublicKey(cfg.JWTPublicKeyFile)
		}
		return nil, errors.New("auth mode jwt needs HINDSIGHT_JWT_SECRET (HS256) or HINDSIGHT_JWT_PUBLIC_KEY_FILE (RS256/ES256)")
	}
	return nil, fmt.Errorf("unknown auth mode %q (want none, apikey or jwt)", cfg.Mode)
}

// checkRawToken applies the rules golang-jwt leaves to us, on the token as
// sent: a header with crit is refused (RFC 7515 §4.1.11: a recipient must
// refuse critical extensions it does not understand, and we understand
// none), and exp, nbf and iat must be JSON numbers (RFC 7519 §2
// NumericDate): golang-jwt's NumericDate also takes a string such as
// "1700000000". The signature is checked afterwards by the parser.
func checkRawToken(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("the token is invalid")
	}
	var header, payload map[string]json.RawMessage
	for _, p := range []struct {
		seg string
		dst *map[string]json.RawMessage
	}{{parts[0], &header}, {parts[1], &payload}} {
		b, err := base64.RawURLEncoding.DecodeString(p.seg)
		if err != nil || json.Unmarshal(b, p.dst) != nil {
			return errors.New("the token is invalid")
		}
	}
	if _, ok := header["crit"]; ok {
		return errors.New("the token has a crit header; no critical extension is supported")
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := payload[name]
		if !ok {
			continue
		}
		var n json.Number
		if first := strings.TrimSpace(string(v)); first == "" || first[0] == '"' || json.Unmarshal(v, &n) != nil {
			return fmt.Errorf("the token's %s claim is not a number", name)
		}
	}
	return nil
}
