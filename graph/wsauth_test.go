package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph"
)

// TestWebsocketCredentialExpires: a websocket authenticated with a JWT is
// closed with 4403 and a reason when the token expires, in the middle of a
// subscription; until then it is served.
func TestWebsocketCredentialExpires(t *testing.T) {
	secret := strings.Repeat("s", 32)
	j, err := auth.NewJWTSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *graph.EndpointConfig) { c.Auth = j })
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	tok := signHS256(t, secret, map[string]any{"sub": "x", "role": "reader", "exp": exp.Unix()})
	w, err := dialAuth(t, h, mustJSON(map[string]any{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	w.subscribe("1", subEvents, map[string]any{"from": "0"})
	h.appendEvents("exp", "X", 0, 1)
	if r := w.next(10 * time.Second); r.kind != "next" || len(r.errors) > 0 {
		t.Fatalf("before expiry: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = w.read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4403 || !strings.Contains(ce.Reason, "expired") {
		t.Fatalf("got %v, want close 4403 with a reason", err)
	}
	if time.Now().Before(exp) {
		t.Fatalf("closed before the token expired")
	}
}
