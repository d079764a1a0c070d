package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hindsight-dev/hindsight/auth"
)

func TestAPIKeys(t *testing.T) {
	keys, err := auth.ParseAPIKeys(strings.NewReader("# comment\n\nk-reader-0123456789 reader\nk-writer-0123456789\twriter cart- order-\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.Authenticate(context.Background(), "k-writer-0123456789")
	if err != nil || p.Role != auth.Writer || strings.Join(p.Prefixes, ",") != "cart-,order-" {
		t.Fatalf("%+v %v", p, err)
	}
	if strings.Contains(p.Subject, "k-writer") {
		t.Fatalf("subject %q shows the key", p.Subject)
	}
	for _, bad := range []string{"", "k-writer-012345678", "k-writer-01234567890", "K-WRITER-0123456789"} {
		if _, err := keys.Authenticate(context.Background(), bad); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, file := range []string{
		"short reader\n",                                       // too short
		"k-reader-0123456789 root\n",                           // unknown role
		"k-reader-0123456789\n",                                // no role
		"k-a-0123456789abc reader\nk-a-0123456789abc writer\n", // duplicate
		"# nothing\n",
	} {
		_, err := auth.ParseAPIKeys(strings.NewReader(file))
		if err == nil {
			t.Errorf("%q: accepted", file)
		} else if strings.Contains(err.Error(), "0123456789") {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

func TestPrincipalScopes(t *testing.T) {
	p := &auth.Principal{Role: auth.Reader, Prefixes: []string{"cart-", "order-a"}}
	for stream, want := range map[string]bool{"cart-1": true, "order-a1": true, "order-b1": false, "cart": false} {
		if p.Allows(stream) != want {
			t.Errorf("Allows(%q) = %v", stream, !want)
		}
	}
	if p.AllowsAllWithPrefix("order-") || !p.AllowsAllWithPrefix("cart-x") {
		t.Error("AllowsAllWithPrefix")
	}
	for want, exp := range map[string]string{"": "cart-,order-a", "order-": "order-a", "cart-1": "", "x": "none"} {
		got, ok := p.Narrow(want)
		s := strings.Join(got, ",")
		if !ok {
			s = "none"
		}
		if s != exp {
			t.Errorf("Narrow(%q) = %q, want %q", want, s, exp)
		}
	}
	if !p.Can(auth.Reader) || p.Can(auth.Writer) {
		t.Error("Can")
	}
}

func TestJWT(t *testing.T) {
	secret := strings.Repeat("k", 32)
	hs, err := auth.NewJWTSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pemOf := func(pub any) []byte {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	rs, err := auth.ParseJWTPublicKey(pemOf(&rsaKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	es, err := auth.ParseJWTPublicKey(pemOf(&ecKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := jwt.MapClaims{"sub": "alice", "role": "writer", "streams": []string{"cart-"}, "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for a, b := range good {
			c[a] = b
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		name  string
		a     auth.Authenticator
		token string
		want  error
	}{
		{"HS256", hs, sign(jwt.SigningMethodHS256, []byte(secret), good), nil},
		{"RS256", rs, sign(jwt.SigningMethodRS256, rsaKey, good), nil},
		{"ES256", es, sign(jwt.SigningMethodES256, ecKey, good), nil},
		{"wrong secret", hs, sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), good), auth.ErrUnauthenticated},
		{"expired", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("exp", now.Add(-time.Hour).Unix())), auth.ErrUnauthenticated},
		{"no exp", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("exp", nil)), auth.ErrUnauthenticated},
		{"not yet valid", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("nbf", now.Add(time.Hour).Unix())), auth.ErrUnauthenticated},
		{"alg none", hs, sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), auth.ErrUnauthenticated},
		// HS256 signed with the RSA public key's PEM: the classic confusion.
		{"alg confusion", rs, sign(jwt.SigningMethodHS256, pemOf(&rsaKey.PublicKey), good), auth.ErrUnauthenticated},
		{"unknown role", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("role", "root")), auth.ErrForbidden},
		{"empty streams", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("streams", []string{})), auth.ErrForbidden},
		{"garbage", hs, "not.a.token", auth.ErrUnauthenticated},
		// RFC 7515 §4.1.11: an unknown critical extension must be refused.
		{"crit header", hs, signWithHeader(t, jwt.SigningMethodHS256, []byte(secret), good, "crit", []string{"foo"}), auth.ErrUnauthenticated},
		// RFC 7519: exp, nbf and iat are NumericDates, JSON numbers.
		{"string exp", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("exp", fmt.Sprint(now.Add(time.Hour).Unix()))), auth.ErrUnauthenticated},
		{"string nbf", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("nbf", fmt.Sprint(now.Unix()))), auth.ErrUnauthenticated},
		{"string iat", hs, sign(jwt.SigningMethodHS256, []byte(secret), with("iat", fmt.Sprint(now.Unix()))), auth.ErrUnauthenticated},
		// Only the configured alg: HS384 with the right secret, RS512 with the right key.
		{"HS384 not configured", hs, sign(jwt.SigningMethodHS384, []byte(secret), good), auth.ErrUnauthenticated},
		{"RS512 not configured", rs, sign(jwt.SigningMethodRS512, rsaKey, good), auth.ErrUnauthenticated},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := c.a.Authenticate(context.Background(), c.token)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err %v, want %v", err, c.want)
				}
				return
			}
			if err != nil || p.Role != auth.Writer || p.Subject != "jwt:alice" || strings.Join(p.Prefixes, ",") != "cart-" {
				t.Fatalf("%+v %v", p, err)
			}
		})
	}
	if _, err := auth.NewJWTSecret([]byte("short")); err == nil {
		t.Error("a short secret was accepted")
	}
}

func TestRateLimiter(t *testing.T) {
	l := auth.NewRateLimiter(1, 2)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a"); ok != want {
			t.Errorf("call %d: %v", i, ok)
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another subject was limited")
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""} {
		if got, _ := auth.BearerToken(h); got != want {
			t.Errorf("%q: %q", h, got)
		}
	}
}

// signWithHeader signs c with an extra header field.
func signWithHeader(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	tok.Header[name] = value
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
