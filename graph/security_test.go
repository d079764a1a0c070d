package graph_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/graph"
)

// The security battery, modelled on graphql-cop's checks: each case is one
// attack and the exact way the endpoint must refuse it.

func withoutIntrospection(c *graph.EndpointConfig) { c.DisableIntrospection = true }

// TestSecurityIntrospection: with introspection disabled, __schema and
// __type are refused (GRAPHQL_VALIDATION_FAILED) and return no data, while
// __typename still works; enabled (the default on loopback) they answer.
func TestSecurityIntrospection(t *testing.T) {
	off := newHarness(t, withoutIntrospection)
	for _, q := range []string{
		`{ __schema { types { name } } }`,
		`{ __type(name: "Event") { fields { name } } }`,
		`query { headPosition ... on Query { __schema { queryType { name } } } }`,
	} {
		_, errs, data := off.post(mustJSON(map[string]any{"query": q}))
		wantCode(t, errs, graph.CodeValidationFailed)
		if strings.Contains(string(data), "Event") || strings.Contains(string(data), "queryType") {
			t.Errorf("%s: schema leaked: %s", q, data)
		}
	}
	if _, errs, _ := off.post(`{"query":"{ __typename }"}`); len(errs) > 0 {
		t.Errorf("__typename: %+v", errs)
	}

	on := newHarness(t)
	if _, errs, data := on.post(`{"query":"{ __schema { queryType { name } } }"}`); len(errs) > 0 || !strings.Contains(string(data), "Query") {
		t.Errorf("introspection on: %s %+v", data, errs)
	}
}

// TestSecurityFieldSuggestions: validation errors do not suggest field
// names when introspection is off, so the schema cannot be guessed from
// them.
func TestSecurityFieldSuggestions(t *testing.T) {
	q := `{"query":"{ headPositon strem(id: \"x\") { id } }"}`
	off := newHarness(t, withoutIntrospection)
	_, errs, _ := off.post(q)
	if len(errs) == 0 {
		t.Fatal("no error")
	}
	for _, e := range errs {
		if strings.Contains(strings.ToLower(e.Message), "did you mean") {
			t.Errorf("suggestion with introspection off: %q", e.Message)
		}
	}
	on := newHarness(t)
	_, errs, _ = on.post(q)
	if len(errs) == 0 || !strings.Contains(errs[0].Message, "Did you mean") {
		t.Errorf("suggestions with introspection on: %+v", errs)
	}
}

// TestSecurityGETMutation: mutations never run over GET (a link or an image
// tag could trigger them), and nothing is written.
func TestSecurityGETMutation(t *testing.T) {
	h := newHarness(t)
	q := url.QueryEscape(`mutation { appendToStream(streamId: "csrf-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`)
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?query="+q, nil)
	_, errs, _ := h.httpDo(req)
	wantCode(t, errs, graph.CodeBadUserInput)
	if h.store.HeadPosition() != 0 {
		t.Fatal("a GET mutation wrote an event")
	}
	// A GET query works.
	req, _ = http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?query="+url.QueryEscape("{ headPosition }"), nil)
	if _, errs, _ := h.httpDo(req); len(errs) > 0 {
		t.Fatalf("GET query: %+v", errs)
	}
}

// TestSecurityCSRFContentTypes: the content types a browser may send
// cross-origin without a preflight are refused with 415, so a foreign page
// cannot make a visitor's browser run a mutation.
func TestSecurityCSRFContentTypes(t *testing.T) {
	h := newHarness(t)
	body := `{"query":"mutation { appendToStream(streamId: \"csrf-1\", events: [{type: \"T\", data: {}}]) { nextExpectedVersion } }"}`
	for _, ct := range []string{
		"text/plain",
		"text/plain;charset=UTF-8",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"",
	} {
		for _, accept := range []string{"", "text/event-stream"} {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(body))
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			status, errs, _ := h.httpDo(req)
			if status != http.StatusUnsupportedMediaType {
				t.Errorf("%q (accept %q): status %d, want 415", ct, accept, status)
			}
			wantCode(t, errs, graph.CodeBadUserInput)
		}
	}
	if h.store.HeadPosition() != 0 {
		t.Fatal("a non-JSON POST wrote an event")
	}
}

// TestSecurityBatching: a JSON array of operations is refused as a whole.
func TestSecurityBatching(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{
		`[{"query":"{ headPosition }"},{"query":"{ headPosition }"}]`,
		" \n\t[{\"query\":\"{ headPosition }\"}]",
	} {
		status, errs, _ := h.post(body)
		if status != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", body, status)
		}
		e := wantCode(t, errs, graph.CodeBadUserInput)
		if !strings.Contains(e.Message, "batch") {
			t.Errorf("message %q does not say why", e.Message)
		}
	}
}

// TestSecurityOverload: alias, depth, directive and token overloading are
// refused with BAD_USER_INPUT and a reason; the limits themselves pass.
func TestSecurityOverload(t *testing.T) {
	h := newHarness(t)
	aliases := func(n int) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&b, "a%d: headPosition ", i)
		}
		return b.String() + "}"
	}
	// Introspection types are the only recursive ones of the schema.
	deep := func(n int) string {
		// __type(1) > fields(2) > type(3) > ofType(4..n-1) > name(n)
		q := `{ __type(name: "Event") { fields { type { `
		for range n - 4 {
			q += "ofType { "
		}
		q += "name "
		return q + strings.Repeat("} ", n-1) + "}"
	}
	directives := func(n int) string {
		return "{ " + strings.Repeat("headPosition @include(if: true) ", n) + "}"
	}
	fragmentAliases := func(spreads int) string {
		// 10 aliases in a fragment spread 4 times: 40 aliases run.
		f := "fragment F on Query { "
		for i := range 10 {
			f += fmt.Sprintf("f%d: headPosition ", i)
		}
		return "{ " + strings.Repeat("...F ", spreads) + "} " + f + "}"
	}
	for _, c := range []struct {
		name, query, reason string
	}{
		{"30 aliases", aliases(30), ""},
		{"31 aliases", aliases(31), "MAX_ALIASES"},
		{"aliases hidden in a fragment", fragmentAliases(4), "MAX_ALIASES"},
		{"depth 15", deep(15), ""},
		{"depth 16", deep(16), "MAX_DEPTH"},
		{"50 directives", directives(50), ""},
		{"51 directives", directives(51), "MAX_DIRECTIVES"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errs, _ := h.post(mustJSON(map[string]any{"query": c.query}))
			if c.reason == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %+v", errs)
				}
				return
			}
			e := wantCode(t, errs, graph.CodeBadUserInput)
			if e.Extensions["reason"] != c.reason {
				t.Fatalf("reason %v, want %s (%q)", e.Extensions["reason"], c.reason, e.Message)
			}
		})
	}

	// Tokens: the parser stops at 10,000.
	q := "{ " + strings.Repeat("__typename ", 10001) + "}"
	_, errs, _ := h.post(mustJSON(map[string]any{"query": q}))
	wantCode(t, errs, graph.CodeBadUserInput)
}

// TestSecurityNoDetailLeak: malformed documents get coded errors without
// stack traces or internals (graphql-cop's "unhandled errors").
func TestSecurityNoDetailLeak(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{
		`{"query":"{ __typename @aaa }"}`,
		`{"query":"{ stream(id: 1) { id } }"}`,
		`{"query": 12}`,
		`{"query":"{ events(first: 999999999999) { edges { cursor } } }"}`,
	} {
		_, errs, _ := h.post(body)
		if len(errs) == 0 {
			t.Errorf("%s: no error", body)
		}
		for _, e := range errs {
			if e.code() == "" || e.code() == graph.CodeInternal || strings.Contains(e.Message, ".go:") || strings.Contains(e.Message, "goroutine") {
				t.Errorf("%s: %+v", body, e)
			}
		}
	}
}
