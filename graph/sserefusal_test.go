package graph_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph"
)

// TestSSERefusals: over SSE, in both modes, an operation refused before
// execution gets the status and the JSON error shape of the README's table,
// as over POST, and no stream: 400 for a document that does not parse,
// validate or pass a limit (graphql-sse's status, and that of
// application/graphql-response+json), 403 for a reader's mutation, 429 with
// Retry-After over the rate.
func TestSSERefusals(t *testing.T) {
	h := newHarness(t, withAPIKeys(t), func(c *graph.EndpointConfig) { c.RateLimiter = auth.NewRateLimiter(0.001, 20) })
	const reader, admin = "reader-all-0000000000000000", "admin-all-00000000000000000"
	// send sends an operation over SSE: distinct connections mode, or over
	// a reserved stream of single connection mode.
	modes := []struct {
		name string
		send func(t *testing.T, key, query string) rawResponse
	}{
		{"distinct connections", func(t *testing.T, key, query string) rawResponse {
			return h.raw(gqlRequest(t, h, http.MethodPost, query, append(bearer(key), "Accept", "text/event-stream")...))
		}},
		{"single connection", func(t *testing.T, key, query string) rawResponse {
			put := mustRequest(t, http.MethodPut, h.srv.URL+"/graphql", "")
			put.Header.Set("Authorization", "Bearer "+key)
			token := readAll(t, awaitResponse(t, sendAsync(h, put)))
			b, _ := json.Marshal(map[string]any{"query": query, "extensions": map[string]any{"operationId": "op"}})
			req := mustRequest(t, http.MethodPost, h.srv.URL+"/graphql", string(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("X-GraphQL-Event-Stream-Token", token)
			return h.raw(req)
		}},
	}
	cases := []struct {
		name, key, query string
		status           int
		code, reason     string
		header           [2]string
	}{
		{name: "parse", key: reader, query: `{ headPosition`, status: 400, code: graph.CodeParseFailed},
		{name: "validation", key: reader, query: `{ nope }`, status: 400, code: graph.CodeValidationFailed},
		{name: "field limit", key: reader, query: "{ " + strings.Repeat("__typename ", graph.DefaultMaxFields+1) + "}",
			status: 400, code: graph.CodeBadUserInput, reason: graph.ReasonMaxFields},
		{name: "complexity", key: reader, query: `{ a: events(first: 1000) { edges { node { id } } } b: events(first: 1000) { edges { node { id } } } c: events(first: 1000) { edges { node { id } } } }`,
			status: 400, code: graph.CodeBadUserInput, reason: graph.ReasonComplexity},
		{name: "a reader's mutation", key: reader, query: `mutation { appendToStream(streamId: "s", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`,
			status: 403, code: graph.CodeForbidden},
		// The last: it spends the admin's rate.
		{name: "rate limit", key: admin, query: `subscription { events { position } }`, status: 429, code: graph.CodeRateLimited,
			header: [2]string{"Retry-After", "1000"}},
	}
	for _, m := range modes {
		for _, c := range cases {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				if c.code == graph.CodeRateLimited {
					for range 20 { // spend the admin's burst (a plain POST: the limit is the principal's)
						if r := h.postRaw(query(`{ headPosition }`), bearer(c.key)...); r.status == http.StatusTooManyRequests {
							break
						}
					}
				}
				r := m.send(t, c.key, c.query)
				if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
					t.Fatalf("status %d (%s), want %d; body %.300s", r.status, r.header.Get("Content-Type"), c.status, r.body)
				}
				if r.hasData || len(r.errs) != 1 || r.errs[0].code() != c.code {
					t.Fatalf("body %.300s, want one %s error and no data", r.body, c.code)
				}
				if reason, _ := r.errs[0].Extensions["reason"].(string); reason != c.reason {
					t.Errorf("reason %q, want %q", reason, c.reason)
				}
				if c.header[0] != "" && r.header.Get(c.header[0]) != c.header[1] {
					t.Errorf("%s: %q, want %q", c.header[0], r.header.Get(c.header[0]), c.header[1])
				}
			})
		}
	}
}
