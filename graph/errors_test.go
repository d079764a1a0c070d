package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

const appendMutation = `mutation($s: String!, $e: [NewEvent!]!, $v: Int, $st: StreamState) {
	appendToStream(streamId: $s, events: $e, expectedVersion: $v, expectedState: $st) {
		streamId nextExpectedVersion firstPosition lastPosition
		events { id streamId version position type data metadata recordedAt hash }
	}
}`

func ev(typ string, data any) map[string]any { return map[string]any{"type": typ, "data": data} }

// TestErrorCodes proves that every client mistake gets BAD_USER_INPUT (or
// gqlgen's parse/validation code) with a message, changes nothing, and that
// conflicts report the actual version.
func TestErrorCodes(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.MaxComplexity = 5000 })
	h.appendEvents("acct-1", "Opened", 0, 2) // acct-1 is at version 2

	huge := strings.Repeat("x", 10)
	tests := []struct {
		name  string
		query string
		vars  map[string]any
		code  string
		check func(t *testing.T, e gqlError)
	}{
		{name: "expected version mismatch reports the actual version", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("X", 1)}, "v": 5}, code: graph.CodeWrongExpectedVersion,
			check: func(t *testing.T, e gqlError) {
				if e.Extensions["actualVersion"] != float64(2) {
					t.Errorf("actualVersion = %v, want 2", e.Extensions["actualVersion"])
				}
			}},
		{name: "NO_STREAM on an existing stream", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("X", 1)}, "st": "NO_STREAM"}, code: graph.CodeWrongExpectedVersion,
			check: func(t *testing.T, e gqlError) {
				if e.Extensions["actualVersion"] != float64(2) {
					t.Errorf("actualVersion = %v, want 2", e.Extensions["actualVersion"])
				}
			}},
		{name: "STREAM_EXISTS on a new stream", query: appendMutation,
			vars: map[string]any{"s": "acct-new", "e": []any{ev("X", 1)}, "st": "STREAM_EXISTS"}, code: graph.CodeWrongExpectedVersion,
			check: func(t *testing.T, e gqlError) {
				if e.Extensions["actualVersion"] != float64(0) {
					t.Errorf("actualVersion = %v, want 0", e.Extensions["actualVersion"])
				}
			}},
		{name: "bad stream id on append", query: appendMutation,
			vars: map[string]any{"s": "has space", "e": []any{ev("X", 1)}}, code: graph.CodeBadUserInput},
		{name: "reserved stream id on append", query: appendMutation,
			vars: map[string]any{"s": "$system", "e": []any{ev("X", 1)}}, code: graph.CodeBadUserInput},
		{name: "bad stream id on query", query: `{ stream(id: "bad id!") { id } }`, code: graph.CodeBadUserInput},
		{name: "expectedVersion and expectedState together", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("X", 1)}, "v": 2, "st": "ANY"}, code: graph.CodeBadUserInput},
		{name: "negative expectedVersion", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("X", 1)}, "v": -1}, code: graph.CodeBadUserInput},
		{name: "no events", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{}}, code: graph.CodeBadUserInput},
		{name: "reserved event type", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("$x", 1)}}, code: graph.CodeBadUserInput},
		{name: "event id that is not a UUID", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{map[string]any{"id": "nope", "type": "X", "data": 1}}}, code: graph.CodeBadUserInput},
		{name: "missing data", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{map[string]any{"type": "X"}}}, code: graph.CodeBadUserInput},
		{name: "null data", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{map[string]any{"type": "X", "data": nil}}}, code: graph.CodeBadUserInput},
		{name: "variable of the wrong type", query: `query($n: Int) { events(first: $n) { pageInfo { hasNextPage } } }`,
			vars: map[string]any{"n": "ten"}, code: graph.CodeBadUserInput},
		{name: "PointInTime with two fields", query: `{ stream(id: "acct-1") { state(at: {version: 1, position: "1"}) } }`, code: graph.CodeBadUserInput},
		{name: "PointInTime version on a non-stream query", query: `{ orderStats(at: {version: 1}) { revenueCents } }`, code: graph.CodeBadUserInput},
		{name: "PointInTime negative version", query: `{ stream(id: "acct-1") { state(at: {version: -1}) } }`, code: graph.CodeBadUserInput},
		{name: "first too large", query: `{ events(first: 100000) { pageInfo { hasNextPage } } }`, code: graph.CodeBadUserInput},
		{name: "first zero", query: `{ events(first: 0) { pageInfo { hasNextPage } } }`, code: graph.CodeBadUserInput},
		{name: "first too large on a stream", query: `{ stream(id: "acct-1") { events(first: 1001) { pageInfo { hasNextPage } } } }`, code: graph.CodeBadUserInput},
		{name: "cursor that is not base64", query: `{ events(after: "!!!") { pageInfo { hasNextPage } } }`, code: graph.CodeBadUserInput},
		{name: "cursor of another connection", query: fmt.Sprintf(`{ events(after: %q) { pageInfo { hasNextPage } } }`, streamCursor(h)), code: graph.CodeBadUserInput},
		{name: "Position that is not digits", query: `{ events(afterPosition: "abc") { pageInfo { hasNextPage } } }`, code: graph.CodeBadUserInput},
		{name: "negative Position", query: `{ events(afterPosition: -1) { pageInfo { hasNextPage } } }`, code: graph.CodeBadUserInput},
		{name: "Time that is not RFC 3339", query: `{ stream(id: "acct-1") { state(at: {time: "yesterday"}) } }`, code: graph.CodeBadUserInput},
		{name: "unknown enum value", query: appendMutation,
			vars: map[string]any{"s": "acct-1", "e": []any{ev("X", 1)}, "st": "MAYBE"}, code: graph.CodeBadUserInput},
		{name: "unknown field", query: `{ nope }`, code: graph.CodeValidationFailed},
		{name: "syntax error", query: `{ events(`, code: graph.CodeParseFailed},
		{name: "too complex", query: `{ a: events(first: 1000) { edges { node { id data } } } b: events(first: 1000) { edges { node { id data } } } }`,
			code: graph.CodeBadUserInput},
		{name: "subscription over plain POST", query: `subscription { events { id } }`, code: graph.CodeBadUserInput},
		{name: "sanity: data is fine", query: appendMutation, vars: map[string]any{"s": "ok-" + huge, "e": []any{ev("X", map[string]any{"a": 1})}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			before := h.store.HeadPosition()
			_, errs, _ := h.post(body(tc.query, tc.vars))
			if tc.code == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors %+v", errs)
				}
				return
			}
			e := wantCode(t, errs, tc.code)
			if e.Message == "" {
				t.Error("empty message")
			}
			if tc.check != nil {
				tc.check(t, e)
			}
			if after := h.store.HeadPosition(); after != before {
				t.Errorf("a failed operation changed the log: head %d -> %d", before, after)
			}
		})
	}
}

func body(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

// streamCursor returns a cursor of a stream's events connection.
func streamCursor(h *harness) string {
	var out struct {
		Stream struct {
			Events struct {
				PageInfo struct{ EndCursor string }
			}
		}
	}
	h.mustDo(`{ stream(id: "acct-1") { events(first: 1) { pageInfo { endCursor } } } }`, nil, &out)
	return out.Stream.Events.PageInfo.EndCursor
}

// TestHTTPErrors covers the limits enforced before GraphQL runs: every
// answer is still a GraphQL error with a code, and the server keeps serving.
func TestHTTPErrors(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.MaxBodyBytes = 64 << 10; c.MaxTokens = 200 })

	t.Run("malformed JSON body", func(t *testing.T) {
		status, errs, _ := h.post(`{"query": "{ headPosition }"`)
		e := wantCode(t, errs, graph.CodeBadUserInput)
		if status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
		if strings.Contains(e.Message, "headPosition") {
			t.Errorf("the message echoes the body: %q", e.Message)
		}
	})
	t.Run("body over the limit with a length gets 413", func(t *testing.T) {
		big := body(appendMutation, map[string]any{"s": "big", "e": []any{ev("X", strings.Repeat("x", 70<<10))}})
		status, errs, _ := h.post(big)
		wantCode(t, errs, graph.CodeBadUserInput)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", status)
		}
	})
	t.Run("chunked body over the limit", func(t *testing.T) {
		big := body(appendMutation, map[string]any{"s": "big", "e": []any{ev("X", strings.Repeat("x", 70<<10))}})
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", struct{ *strings.Reader }{strings.NewReader(big)})
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		_, errs, _ := h.httpDo(req)
		wantCode(t, errs, graph.CodeBadUserInput)
	})
	t.Run("token limit", func(t *testing.T) {
		q := "{" + strings.Repeat(" headPosition", 300) + " }"
		_, errs, _ := h.post(body(q, nil))
		wantCode(t, errs, graph.CodeBadUserInput)
	})
	t.Run("wrong content type", func(t *testing.T) {
		status, errs, _ := h.post(body(`{ headPosition }`, nil), "Content-Type", "text/plain")
		wantCode(t, errs, graph.CodeBadUserInput)
		if status != http.StatusUnsupportedMediaType {
			t.Errorf("status %d, want 415", status)
		}
	})
	t.Run("mutation over GET", func(t *testing.T) {
		q := url.Values{"query": {`mutation { appendToStream(streamId: "g", events: [{type: "X", data: 1}]) { streamId } }`}}
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?"+q.Encode(), nil)
		_, errs, _ := h.httpDo(req)
		wantCode(t, errs, graph.CodeBadUserInput)
		if _, err := h.store.Head(context.Background(), "g"); err == nil {
			t.Error("the mutation over GET was executed")
		}
	})
	t.Run("query over GET works", func(t *testing.T) {
		q := url.Values{"query": {`{ headPosition }`}}
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?"+q.Encode(), nil)
		status, errs, data := h.httpDo(req)
		if status != http.StatusOK || len(errs) > 0 {
			t.Fatalf("status %d, errors %+v", status, errs)
		}
		if !strings.Contains(string(data), "headPosition") {
			t.Errorf("data %s", data)
		}
	})
	t.Run("bad variables over GET", func(t *testing.T) {
		q := url.Values{"query": {`{ headPosition }`}, "variables": {"{nope"}}
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?"+q.Encode(), nil)
		_, errs, _ := h.httpDo(req)
		wantCode(t, errs, graph.CodeBadUserInput)
	})
	t.Run("unsupported method", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, h.srv.URL+"/graphql", nil)
		status, errs, _ := h.httpDo(req)
		wantCode(t, errs, graph.CodeBadUserInput)
		if status != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", status)
		}
	})
	t.Run("websocket from a foreign origin", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Origin", "https://evil.example")
		status, errs, _ := h.httpDo(req)
		wantCode(t, errs, graph.CodeForbidden)
		if status != http.StatusForbidden {
			t.Errorf("status %d, want 403", status)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		h.mustDo(`{ headPosition }`, nil, nil)
	})
}

// TestInternalErrorLeaksNothing makes a resolver panic (no projections
// service behind Stream.state) and checks the client sees a generic message
// with a request id, while the log has the detail under the same id.
func TestInternalErrorLeaksNothing(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.Resolver.Projections = nil })
	h.appendEvents("p-1", "X", 0, 1)
	_, errs, _ := h.post(body(`{ stream(id: "p-1") { id state } }`, nil), "X-Request-Id", "req-42")
	e := wantCode(t, errs, graph.CodeInternal)
	for _, leak := range []string{"nil", "pointer", "runtime", "panic", ".go", "projections"} {
		if strings.Contains(strings.ToLower(e.Message), leak) {
			t.Errorf("message %q leaks %q", e.Message, leak)
		}
	}
	if !strings.Contains(e.Message, "req-42") || e.Extensions["requestId"] != "req-42" {
		t.Errorf("message %q / extensions %v do not carry the request id", e.Message, e.Extensions)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "req-42") || !strings.Contains(logs, "nil pointer") {
		t.Errorf("the log lacks the detail:\n%s", logs)
	}
	h.mustDo(`{ headPosition }`, nil, nil) // still serving
}

// TestStoreUnavailable checks that a store that went away fails requests fast
// with STORE_UNAVAILABLE and the server keeps answering.
func TestStoreUnavailable(t *testing.T) {
	t.Run("closed event store", func(t *testing.T) {
		h := newHarness(t)
		if err := h.store.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{`{ headPosition }`, `{ stream(id: "a") { id } }`, `{ events { edges { cursor } } }`} {
			_, errs := h.do(q, nil)
			wantCode(t, errs, graph.CodeStoreUnavailable)
		}
		_, errs := h.do(appendMutation, map[string]any{"s": "a", "e": []any{ev("X", 1)}})
		wantCode(t, errs, graph.CodeStoreUnavailable)
	})

	t.Run("database server gone", func(t *testing.T) {
		if os.Getenv("HINDSIGHT_MONGODB_URI") != "" {
			t.Skip("needs the embedded store, to stop it")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		quiet := slog.New(slog.DiscardHandler)
		srv, err := embedded.Start(ctx, embedded.Config{Dir: t.TempDir(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		mc, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).
			SetServerSelectionTimeout(time.Second).SetConnectTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer mc.Disconnect(context.Background())
		store, err := eventstore.Open(ctx, mc, "gone", eventstore.WithOpTimeout(2*time.Second), eventstore.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close(context.Background())
		if err := store.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		ep := graph.NewEndpoint(graph.EndpointConfig{Resolver: &graph.Resolver{Store: store}, Log: quiet, AllowedHosts: []string{"example.com"}})
		h := &harness{t: t, store: store, endpoint: ep, logs: &syncBuffer{}}
		h.gql = client.New(ep)
		h.mustDo(appendMutation, map[string]any{"s": "a", "e": []any{ev("X", 1)}}, nil)

		if err := srv.Close(ctx); err != nil { // gives connected clients up to 3 s
			t.Fatal(err)
		}
		start := time.Now()
		_, errs := h.do(appendMutation, map[string]any{"s": "a", "e": []any{ev("X", 2)}})
		wantCode(t, errs, graph.CodeStoreUnavailable)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("failing took %v; want fast", d)
		}
		// Reads come from memory and keep working.
		h.mustDo(`{ stream(id: "a") { version } }`, nil, nil)
	})
}
