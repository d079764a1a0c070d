package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph"
)

// Keys of the access-control tests: every role, unscoped and scoped to the
// streams "cart-..." and the orders "a...".
const testKeys = `
# key                        role    prefixes
reader-all-0000000000000000  reader
writer-all-0000000000000000  writer
admin-all-00000000000000000  admin
reader-cart-000000000000000  reader  cart- order-a
writer-cart-000000000000000  writer  cart- order-a
admin-cart-0000000000000000  admin   cart- order-a
`

func withAPIKeys(t *testing.T) harnessOption {
	keys, err := auth.ParseAPIKeys(strings.NewReader(testKeys))
	if err != nil {
		t.Fatal(err)
	}
	return func(c *graph.EndpointConfig) { c.Auth = keys }
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// bearerTransport adds a credential to every request, for the SSE client.
type bearerTransport struct{ key string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// dialAuth opens a graphql-transport-ws connection whose connection_init
// carries payload, returning the connection and the ack or close error.
func dialAuth(t *testing.T, h *harness, payload string) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+h.srv.URL[4:]+"/graphql", &websocket.DialOptions{Subprotocols: []string{protoTransportWS}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	w := &wsClient{t: t, c: c, proto: protoTransportWS}
	w.send(wsMessage{Type: "connection_init", Payload: json.RawMessage(payload)})
	m, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	if m.Type != "connection_ack" {
		t.Fatalf("got %s, want connection_ack or a close", m.Type)
	}
	return w, nil
}

// TestAuthMatrix runs every operation kind as every role, scoped and
// unscoped, on a stream inside and outside the scope, through the real
// endpoint, and checks the exact outcome: success or FORBIDDEN.
func TestAuthMatrix(t *testing.T) {
	h := newHarness(t, withAPIKeys(t))
	admin := bearer("admin-all-00000000000000000")
	for _, q := range []string{
		`mutation { appendToStream(streamId: "cart-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`,
		`mutation { appendToStream(streamId: "secret-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`,
		`mutation { createOrder(orderId: "a1", customerId: "c") { id } }`,
		`mutation { createOrder(orderId: "b1", customerId: "c") { id } }`,
	} {
		if _, errs, _ := h.post(mustJSON(map[string]any{"query": q}), admin...); len(errs) > 0 {
			t.Fatalf("seed %s: %+v", q, errs)
		}
	}

	type op struct {
		name  string
		kind  string    // query, mutation, subscription
		need  auth.Role // role the operation needs
		query func(in bool) string
		// scoped: the target is a stream that in/out selects; aggregate: the
		// operation covers all orders; global: the global log, filtered.
		scoped, aggregate, global bool
	}
	stream := func(in bool) string {
		if in {
			return "cart-1"
		}
		return "secret-1"
	}
	order := func(in bool) string {
		if in {
			return "a1"
		}
		return "b1"
	}
	ops := []op{
		{name: "stream", kind: "query", need: auth.Reader, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`{ stream(id: %q) { version } }`, stream(in))
		}},
		{name: "order", kind: "query", need: auth.Reader, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`{ order(id: %q) { id } }`, order(in))
		}},
		{name: "orderHistory", kind: "query", need: auth.Reader, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`{ orderHistory(id: %q) { version } }`, order(in))
		}},
		{name: "orders", kind: "query", need: auth.Reader, aggregate: true, query: func(bool) string {
			return `{ orders { totalCount } }`
		}},
		{name: "orderStats", kind: "query", need: auth.Reader, aggregate: true, query: func(bool) string {
			return `{ orderStats { revenueCents } }`
		}},
		{name: "events", kind: "query", need: auth.Reader, global: true, query: func(bool) string {
			return `{ events(afterPosition: "0") { edges { node { streamId } } } }`
		}},
		{name: "headPosition", kind: "query", need: auth.Reader, query: func(bool) string { return `{ headPosition }` }},
		{name: "diagnostics", kind: "query", need: auth.Admin, query: func(bool) string {
			return `{ diagnostics { headPosition storeKind projectors { name lag } } }`
		}},
		{name: "appendToStream", kind: "mutation", need: auth.Writer, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`mutation { appendToStream(streamId: %q, events: [{type: "T", data: {}}]) { nextExpectedVersion } }`, stream(in))
		}},
		{name: "addOrderItem", kind: "mutation", need: auth.Writer, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`mutation { addOrderItem(orderId: %q, item: {sku: "s", quantity: 1, unitPriceCents: 1}) { id } }`, order(in))
		}},
		{name: "createOrder without id", kind: "mutation", need: auth.Writer, aggregate: true, query: func(bool) string {
			return `mutation { createOrder(customerId: "c") { id } }`
		}},
		{name: "streamEvents", kind: "subscription", need: auth.Reader, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`subscription { streamEvents(streamId: %q, afterVersion: 0) { streamId } }`, stream(in))
		}},
		{name: "orderChanged", kind: "subscription", need: auth.Reader, scoped: true, query: func(in bool) string {
			return fmt.Sprintf(`subscription { orderChanged(id: %q, afterVersion: 0) { version } }`, order(in))
		}},
	}
	principals := []struct {
		key    string
		role   auth.Role
		scoped bool
	}{
		{"reader-all-0000000000000000", auth.Reader, false},
		{"writer-all-0000000000000000", auth.Writer, false},
		{"admin-all-00000000000000000", auth.Admin, false},
		{"reader-cart-000000000000000", auth.Reader, true},
		{"writer-cart-000000000000000", auth.Writer, true},
		{"admin-cart-0000000000000000", auth.Admin, true},
	}
	for _, p := range principals {
		for _, o := range ops {
			for _, in := range []bool{true, false} {
				if !o.scoped && !in {
					continue // one target only
				}
				name := fmt.Sprintf("%s/%s/in=%v", p.key[:strings.LastIndex(p.key, "-")], o.name, in)
				t.Run(name, func(t *testing.T) {
					want := ""
					switch {
					case p.role < o.need:
						want = graph.CodeForbidden
					case p.scoped && o.scoped && !in, p.scoped && o.aggregate:
						want = graph.CodeForbidden
					}
					var errs []gqlError
					var data json.RawMessage
					if o.kind == "subscription" {
						hc := &http.Client{Transport: bearerTransport{p.key}}
						s := subscribeSSE(t, hc, h.srv.URL, o.query(in), nil)
						r := s.next(10 * time.Second)
						s.close()
						if r.kind != "next" {
							t.Fatalf("subscription: %s %v", r.kind, r.closeErr)
						}
						errs, data = r.errors, r.data
					} else {
						_, errs, data = h.post(mustJSON(map[string]any{"query": o.query(in)}), bearer(p.key)...)
					}
					if want != "" {
						wantCode(t, errs, want)
						return
					}
					if len(errs) > 0 {
						t.Fatalf("want success, got %+v", errs)
					}
					if o.global && p.scoped && strings.Contains(string(data), "secret-") {
						t.Fatalf("the global log shows a stream outside the scope: %s", data)
					}
					if o.global && !strings.Contains(string(data), "cart-1") {
						t.Fatalf("the global log misses an allowed stream: %s", data)
					}
				})
			}
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestAuthUnauthenticated: without a valid credential nothing reaches
// GraphQL: 401 with UNAUTHENTICATED and a WWW-Authenticate challenge.
func TestAuthUnauthenticated(t *testing.T) {
	h := newHarness(t, withAPIKeys(t))
	for _, hdr := range [][]string{
		nil,
		{"Authorization", "Bearer wrong-key-000000000000000"},
		{"Authorization", "Basic cmVhZGVyLWFsbA=="},
		{"Authorization", "Bearer"},
		{"Authorization", "Bearer reader-all-000000000000000"}, // one character short
	} {
		status, errs, _ := h.post(`{"query":"{ headPosition }"}`, hdr...)
		if status != http.StatusUnauthorized {
			t.Errorf("%v: status %d, want 401", hdr, status)
		}
		e := wantCode(t, errs, graph.CodeUnauthenticated)
		if strings.Contains(e.Message, "wrong-key") || strings.Contains(e.Message, "reader-all") {
			t.Errorf("the message echoes the credential: %q", e.Message)
		}
	}
	if strings.Contains(h.logs.String(), "wrong-key") {
		t.Error("a key was logged")
	}
}

// TestAuthScopedGlobalLog: on the global log a scoped reader sees only its
// streams, page after page, with a correct hasNextPage, and the same over a
// subscription; events of other streams are skipped silently.
func TestAuthScopedGlobalLog(t *testing.T) {
	h := newHarness(t, withAPIKeys(t))
	for i := 0; i < 5; i++ {
		h.appendEvents("secret-x", "T", 0, 3)
		h.appendEvents(fmt.Sprintf("cart-%d", i), "T", 0, 1)
	}
	h.appendEvents("order-a9", "T", 0, 1)
	h.appendEvents("secret-y", "T", 0, 3)
	key := "reader-cart-000000000000000"

	var got []string
	after := ""
	for page := 0; page < 10; page++ {
		var out struct {
			Events struct {
				Edges []struct {
					Node struct{ StreamID string }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   string
				}
			}
		}
		vars := map[string]any{}
		if after != "" {
			vars["after"] = after
		}
		_, errs, data := h.post(mustJSON(map[string]any{"query": `query($after: String) { events(afterPosition: "0", first: 2, after: $after) { edges { node { streamId } } pageInfo { hasNextPage endCursor } } }`, "variables": vars}), bearer(key)...)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events.Edges {
			got = append(got, e.Node.StreamID)
		}
		if !out.Events.PageInfo.HasNextPage {
			break
		}
		after = out.Events.PageInfo.EndCursor
	}
	want := "cart-0 cart-1 cart-2 cart-3 cart-4 order-a9"
	if strings.Join(got, " ") != want {
		t.Fatalf("pages gave %v, want %s", got, want)
	}

	// A prefix outside the scope is an empty page, not an error.
	_, errs, data := h.post(`{"query":"{ events(streamPrefix: \"secret-\") { edges { node { streamId } } pageInfo { hasNextPage } } }"}`, bearer(key)...)
	if len(errs) > 0 || !strings.Contains(string(data), `"edges":[]`) {
		t.Fatalf("out-of-scope prefix: %s %+v", data, errs)
	}

	// The subscription skips the other streams too.
	s := subscribeSSE(t, &http.Client{Transport: bearerTransport{key}}, h.srv.URL,
		`subscription { events(afterPosition: "0") { streamId } }`, nil)
	var subGot []string
	for range 6 {
		r := s.next(10 * time.Second)
		if r.kind != "next" || len(r.errors) > 0 {
			t.Fatalf("subscription: %+v", r)
		}
		var ev struct{ Events struct{ StreamID string } }
		_ = json.Unmarshal(r.data, &ev)
		subGot = append(subGot, ev.Events.StreamID)
	}
	if strings.Join(subGot, " ") != want {
		t.Fatalf("subscription gave %v, want %s", subGot, want)
	}
}

// TestAuthWebsocket: credentials come with connection_init; a bad one closes
// with 4401, a token that grants nothing with 4403, and a good one is
// scoped like HTTP.
func TestAuthWebsocket(t *testing.T) {
	h := newHarness(t, withAPIKeys(t))
	for _, c := range []struct {
		payload string
		code    websocket.StatusCode
	}{
		{`{}`, 4401},
		{`{"Authorization": "Bearer nope-nope-nope-nope-nope"}`, 4401},
	} {
		_, err := dialAuth(t, h, c.payload)
		if got := websocket.CloseStatus(err); got != c.code {
			t.Errorf("%s: close %d (%v), want %d", c.payload, got, err, c.code)
		}
	}

	w, err := dialAuth(t, h, `{"Authorization": "Bearer reader-cart-000000000000000"}`)
	if err != nil {
		t.Fatal(err)
	}
	w.subscribe("1", `subscription { streamEvents(streamId: "secret-1") { version } }`, nil)
	if r := w.next(10 * time.Second); r.kind != "error" && (r.kind != "next" || len(r.errors) == 0 || r.errors[0].code() != graph.CodeForbidden) {
		t.Fatalf("out-of-scope subscription: %+v", r)
	}
	w.subscribe("2", `mutation { appendToStream(streamId: "cart-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`, nil)
	r := w.next(10 * time.Second)
	for r.id == "1" && r.kind == "complete" {
		r = w.next(10 * time.Second)
	}
	if r.kind != "error" && r.kind != "next" {
		t.Fatalf("mutation as reader: %+v", r)
	}
	if len(r.errors) == 0 || r.errors[0].code() != graph.CodeForbidden {
		t.Fatalf("mutation as reader: %+v, want FORBIDDEN", r)
	}
}

// TestAuthWebsocketForbidden: a genuine token without a usable role closes
// the websocket with 4403; HTTP answers 403.
func TestAuthWebsocketForbidden(t *testing.T) {
	secret := strings.Repeat("s", 32)
	j, err := auth.NewJWTSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *graph.EndpointConfig) { c.Auth = j })
	tok := signHS256(t, secret, map[string]any{"sub": "x", "role": "superuser", "exp": time.Now().Add(time.Hour).Unix()})
	_, err = dialAuth(t, h, mustJSON(map[string]any{"Authorization": "Bearer " + tok}))
	if got := websocket.CloseStatus(err); got != 4403 {
		t.Fatalf("close %d (%v), want 4403", got, err)
	}
	status, errs, _ := h.post(`{"query":"{ headPosition }"}`, bearer(tok)...)
	if status != http.StatusForbidden {
		t.Errorf("status %d, want 403", status)
	}
	wantCode(t, errs, graph.CodeForbidden)

	good := signHS256(t, secret, map[string]any{"sub": "x", "role": "reader", "streams": []string{"cart-"}, "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := dialAuth(t, h, mustJSON(map[string]any{"Authorization": "Bearer " + good})); err != nil {
		t.Fatalf("good token: %v", err)
	}
	_, errs, _ = h.post(`{"query":"{ stream(id: \"x-1\") { version } }"}`, bearer(good)...)
	wantCode(t, errs, graph.CodeForbidden)
}

// TestRateLimit: past the burst an operation fails with RATE_LIMITED and
// a retry hint; other principals are not affected.
func TestRateLimit(t *testing.T) {
	h := newHarness(t, withAPIKeys(t), func(c *graph.EndpointConfig) { c.RateLimiter = auth.NewRateLimiter(0.5, 3) })
	for i := 0; i < 3; i++ {
		if _, errs, _ := h.post(`{"query":"{ headPosition }"}`, bearer("reader-all-0000000000000000")...); len(errs) > 0 {
			t.Fatalf("request %d: %+v", i, errs)
		}
	}
	_, errs, _ := h.post(`{"query":"{ headPosition }"}`, bearer("reader-all-0000000000000000")...)
	e := wantCode(t, errs, graph.CodeRateLimited)
	if e.Extensions["retryAfterSeconds"] == nil {
		t.Errorf("no retryAfterSeconds: %+v", e)
	}
	if _, errs, _ := h.post(`{"query":"{ headPosition }"}`, bearer("writer-all-0000000000000000")...); len(errs) > 0 {
		t.Fatalf("another key: %+v", errs)
	}
}

func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
