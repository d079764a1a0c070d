package graph_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestBodyLimit sends bodies over and under the default limit (8 MiB), with
// and without Content-Length, to plain POST and to SSE. Every body over the
// limit gets 413 with BAD_USER_INPUT and changes nothing, and the next
// request works.
func TestBodyLimit(t *testing.T) {
	h := newHarness(t)
	const mib = 1 << 20
	appendBody := func(pad int) string {
		return body(`mutation($e: [NewEvent!]!) { appendToStream(streamId: "limit", events: $e) { lastPosition } }`,
			map[string]any{"e": []any{ev("T", 1)}, "pad": strings.Repeat("x", pad)})
	}
	// sized is a query of exactly n bytes.
	sized := func(n int) string {
		b := body(`{ headPosition }`, map[string]any{"pad": ""})
		return body(`{ headPosition }`, map[string]any{"pad": strings.Repeat("x", n-len(b))})
	}
	cases := []struct {
		name    string
		body    string
		chunked bool // no Content-Length: Transfer-Encoding: chunked
		sse     bool
		status  int
	}{
		{"20 MiB, chunked", appendBody(20 * mib), true, false, http.StatusRequestEntityTooLarge},
		{"20 MiB, with a length", appendBody(20 * mib), false, false, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", sized(graph.DefaultMaxBodyBytes + 1), true, false, http.StatusRequestEntityTooLarge},
		{"exactly the limit, chunked", sized(graph.DefaultMaxBodyBytes), true, false, http.StatusOK},
		{"20 MiB, chunked, SSE", appendBody(20 * mib), true, true, http.StatusRequestEntityTooLarge},
		{"1 MiB, chunked", body(`{ headPosition }`, map[string]any{"pad": strings.Repeat("x", mib)}), true, false, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(c.body)
			if c.chunked {
				r = io.MultiReader(r) // hides the length from net/http
			}
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", r)
			req.Header.Set("Content-Type", "application/json")
			if c.sse {
				req.Header.Set("Accept", "text/event-stream")
			}
			status, errs, data := h.httpDo(req)
			if status != c.status {
				t.Errorf("status %d, want %d", status, c.status)
			}
			if c.status == http.StatusOK {
				if len(errs) > 0 || !strings.Contains(string(data), "headPosition") {
					t.Errorf("errors %+v, data %s", errs, data)
				}
			} else {
				e := wantCode(t, errs, graph.CodeBadUserInput)
				if !strings.Contains(e.Message, "larger than") {
					t.Errorf("message %q", e.Message)
				}
			}
			h.mustDo(`{ headPosition }`, nil, nil) // still serving
		})
	}
	if _, err := h.store.Head(context.Background(), "limit"); err == nil {
		t.Error("an oversized append was written")
	}
}

// TestBodyLimitBoundsReading feeds the endpoint an endless chunked body: it
// answers 413 after reading little more than the limit, so memory stays
// bounded whatever a client sends.
func TestBodyLimitBoundsReading(t *testing.T) {
	const limit = 1 << 20
	h := newHarness(t, func(c *graph.EndpointConfig) { c.MaxBodyBytes = limit })
	for _, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			src := &countingReader{}
			req := httptest.NewRequest(http.MethodPost, "/graphql", src)
			req.ContentLength = -1
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			h.endpoint.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", rec.Code)
			}
			var resp struct {
				Errors []gqlError `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			wantCode(t, resp.Errors, graph.CodeBadUserInput)
			if src.n > limit+64<<10 {
				t.Errorf("read %d bytes of the body; the limit is %d", src.n, limit)
			}
		})
	}
}

// countingReader is an endless body of spaces that counts what was read.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += len(p)
	return len(p), nil
}
