package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/eventstore"
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

// TestBodyLimitEveryTransport: the documented limit of a request
// (MaxBodyBytes, 8 MiB) is the same over every transport. A request of
// exactly the limit (a POST or SSE body; a websocket message, in one frame
// or in fragments of 1 MiB) appends its event; one byte more is refused
// (413 with BAD_USER_INPUT over HTTP, close code 1009 over a websocket) and
// writes nothing, and its share of the body budget comes back.
func TestBodyLimitEveryTransport(t *testing.T) {
	h := newHarness(t)
	const limit = graph.DefaultMaxBodyBytes
	const mutation = `mutation($e: [NewEvent!]!, $s: String!) { appendToStream(streamId: $s, events: $e) { nextExpectedVersion } }`
	want := `{"appendToStream":{"nextExpectedVersion":1}}`
	vars := func(stream string) map[string]any { return map[string]any{"s": stream, "e": []any{ev("T", 1)}} }

	// Each send returns the response's data on success, or else the
	// refusal: an HTTP status and code, or a close code.
	overHTTP := func(sse bool) func(t *testing.T, stream string, size int) (string, string) {
		return func(t *testing.T, stream string, size int) (string, string) {
			b := padded(size, func(pad string) []byte { return paddedParams(mutation, vars(stream), pad) })
			if len(b) != size {
				t.Fatalf("body of %d bytes, want %d", len(b), size)
			}
			if sse {
				status, code, data := sendSSE(t, h.srv.URL, b)
				if status != http.StatusOK {
					return "", fmt.Sprintf("%d %s", status, code)
				}
				if code != "" {
					t.Fatalf("refused during execution: %s", code)
				}
				return data, ""
			}
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			status, errs, data := h.httpDo(req)
			if status != http.StatusOK {
				return "", fmt.Sprintf("%d %s", status, wantCode(t, errs, graph.CodeBadUserInput).code())
			}
			return string(data), ""
		}
	}
	overWS := func(proto string, fragment int) func(t *testing.T, stream string, size int) (string, string) {
		return func(t *testing.T, stream string, size int) (string, string) {
			w := mustDialWS(t, h.srv.URL, proto)
			msg := paddedSubscribe(proto, "1", mutation, vars(stream), size)
			if len(msg) != size {
				t.Fatalf("message of %d bytes, want %d", len(msg), size)
			}
			sent := make(chan error, 1)
			go func() { sent <- writeMessage(w.c, msg, fragment) }()
			r := w.next(30 * time.Second)
			if r.kind == "closed" {
				return "", fmt.Sprintf("close %d", websocket.CloseStatus(r.closeErr))
			}
			if err := <-sent; err != nil {
				t.Fatalf("write: %v", err)
			}
			if r.kind != "next" || len(r.errors) > 0 {
				t.Fatalf("got %+v", r)
			}
			return string(r.data), ""
		}
	}
	for i, tr := range []struct {
		name    string
		send    func(t *testing.T, stream string, size int) (data, refusal string)
		refusal string
	}{
		{"POST", overHTTP(false), "413 BAD_USER_INPUT"},
		{"SSE", overHTTP(true), "413 BAD_USER_INPUT"},
		{protoTransportWS + ", one frame", overWS(protoTransportWS, 0), "close 1009"},
		{protoGraphQLWS + ", 1 MiB fragments", overWS(protoGraphQLWS, 1<<20), "close 1009"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			stream := fmt.Sprintf("limit-%d", i)
			if data, refusal := tr.send(t, stream, limit+1); refusal != tr.refusal {
				t.Fatalf("one byte over the limit: got data %s, refusal %q; want refusal %q", data, refusal, tr.refusal)
			}
			if _, err := h.store.Head(context.Background(), stream); !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Fatalf("after the refusal, the stream's head: %v; want ErrStreamNotFound", err)
			}
			eventually(t, 10*time.Second, "the refused request to give up its share of the body budget", func() bool {
				return graph.BodyBudgetFree(h.endpoint)
			})
			if data, refusal := tr.send(t, stream, limit); data != want {
				t.Fatalf("exactly the limit: got data %s, refusal %q; want %s", data, refusal, want)
			}
		})
	}
}
