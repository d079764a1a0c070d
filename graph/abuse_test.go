package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph"
)

// The abuse battery: every row of the hostile test's table (issue 15), each
// refused with the documented status and code, in a small response, writing
// nothing.

// rawResponse is one HTTP exchange as sent over the wire.
type rawResponse struct {
	status  int
	header  http.Header
	body    []byte
	errs    []gqlError
	data    json.RawMessage
	hasData bool
}

func (h *harness) raw(req *http.Request) rawResponse {
	h.t.Helper()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := rawResponse{status: resp.StatusCode, header: resp.Header, body: body}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(body, &r); err != nil {
		h.t.Fatalf("status %d, body %.200q is not a GraphQL response: %v", resp.StatusCode, body, err)
	}
	out.data, out.hasData = r["data"]
	if e, ok := r["errors"]; ok {
		if err := json.Unmarshal(e, &out.errs); err != nil {
			h.t.Fatal(err)
		}
	}
	return out
}

func (h *harness) postRaw(body string, header ...string) rawResponse {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.raw(req)
}

// repeat joins n copies of f(i).
func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(f(i))
		b.WriteByte(' ')
	}
	return b.String()
}

func query(q string) string { return mustJSON(map[string]any{"query": q}) }

func TestAbuseBattery(t *testing.T) {
	const smallBody = 2 << 10 // a refusal fits in 2 KiB
	open := newHarness(t)
	keyed := newHarness(t, withAPIKeys(t))
	limited := newHarness(t, withAPIKeys(t), func(c *graph.EndpointConfig) { c.RateLimiter = auth.NewRateLimiter(5, 5) })
	noIntro := newHarness(t, withoutIntrospection)
	secret := strings.Repeat("s", 32)
	jwtAuth, err := auth.NewJWTSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	jwtH := newHarness(t, func(c *graph.EndpointConfig) { c.Auth = jwtAuth })
	seed := func(h *harness, key string) {
		r := h.postRaw(query(`mutation { appendToStream(streamId: "cart-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`), bearer(key)...)
		if len(r.errs) > 0 {
			t.Fatalf("seed: %+v", r.errs)
		}
	}
	seed(keyed, "admin-all-00000000000000000")
	appendQ := `mutation($s: String!, $v: Int, $id: ID) { appendToStream(streamId: $s, expectedVersion: $v, events: [{id: $id, type: "T", data: {}}]) { nextExpectedVersion } }`
	token := func(header map[string]any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()

	for _, c := range []struct {
		row, name string
		h         *harness
		send      func(h *harness) rawResponse
		status    int
		code      string
		reason    string // extensions.reason, when set
		maxBody   int
		check     func(t *testing.T, r rawResponse)
	}{
		{row: "B1", name: "1,105 stream(id) fields", h: open, status: 200, code: graph.CodeBadUserInput, reason: "MAX_FIELDS", maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ " + repeat(1105, func(i int) string { return fmt.Sprintf(`stream(id:"s%d"){id}`, i) }) + "}"))
			}},
		{row: "B1", name: "150 stream(id){id}, 300 fields: validated, errors capped", h: open, status: 200, code: graph.CodeValidationFailed, maxBody: 16 << 10,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ " + repeat(graph.DefaultMaxFields/2, func(i int) string { return fmt.Sprintf(`stream(id:"s%d"){id}`, i) }) + "}"))
			},
			check: func(t *testing.T, r rawResponse) {
				if len(r.errs) != graph.MaxErrors+1 {
					t.Fatalf("%d errors, want %d", len(r.errs), graph.MaxErrors+1)
				}
				last := r.errs[graph.MaxErrors]
				// 150 stream fields conflict pairwise: 150*149/2 errors in all.
				if last.code() != graph.CodeTooManyErrors || last.Extensions["omitted"] != float64(150*149/2-graph.MaxErrors) {
					t.Errorf("last error %+v", last)
				}
			}},
		{row: "B2", name: "9,000 __typename under the token limit", h: open, status: 200, code: graph.CodeBadUserInput, reason: "MAX_FIELDS", maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ " + strings.Repeat("__typename ", 9000) + "}"))
			}},
		{row: "B2", name: "graphql-response+json: 400, no data", h: open, status: 400, code: graph.CodeBadUserInput, reason: "MAX_FIELDS", maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ "+strings.Repeat("__typename ", 9000)+"}"), "Accept", "application/graphql-response+json")
			}},
		{row: "B3/B7", name: "over the rate", h: limited, status: 429, code: graph.CodeRateLimited, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				for i := 0; i < 5; i++ {
					h.postRaw(query("{ headPosition }"), bearer("reader-all-0000000000000000")...)
				}
				return h.postRaw(query("{ "+strings.Repeat("__typename ", 9000)+"}"), bearer("reader-all-0000000000000000")...)
			},
			check: func(t *testing.T, r rawResponse) {
				if ra := r.header.Get("Retry-After"); ra != "1" {
					t.Errorf("Retry-After %q, want 1", ra)
				}
			}},
		{row: "A1", name: "no suggestions without introspection", h: noIntro, status: 200, code: graph.CodeValidationFailed, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query(`query($x: OrderStatu) { headPositon stream(i: "x") { id } orders(status: PAI) { nodes { id } } }`))
			},
			check: func(t *testing.T, r rawResponse) {
				if len(r.errs) < 4 {
					t.Fatalf("want an error per mistake: %+v", r.errs)
				}
				for _, name := range []string{"Did you mean", "headPosition", "PAID", `"OrderStatus"`, "Query.", `"String`} {
					if strings.Contains(string(r.body), name) {
						t.Errorf("the response names %s: %s", name, r.body)
					}
				}
			}},
		{row: "A2", name: "foreign Host under auth none", h: open, status: 403, code: graph.CodeForbidden, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql",
					strings.NewReader(query(`mutation { appendToStream(streamId: "dns-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`)))
				req.Host = "attacker.example:" + strings.Split(h.srv.URL, ":")[2]
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Origin", "http://"+req.Host)
				return h.raw(req)
			}},
		{row: "A2", name: "foreign Host, SSE", h: open, status: 403, code: graph.CodeForbidden, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(query(`subscription { events { position } }`)))
				req.Host = "attacker.example"
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "text/event-stream")
				return h.raw(req)
			}},
		{row: "A3", name: "a reader's mutation", h: keyed, status: 403, code: graph.CodeForbidden, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query(`mutation { appendToStream(streamId: "cart-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`), bearer("reader-all-0000000000000000")...)
			}},
		{row: "A3", name: "a prefix violation is a field error", h: keyed, status: 200, code: graph.CodeForbidden, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query(`mutation { appendToStream(streamId: "secret-1", events: [{type: "T", data: {}}]) { nextExpectedVersion } }`), bearer("writer-cart-000000000000000")...)
			},
			check: func(t *testing.T, r rawResponse) {
				if !r.hasData || string(r.data) != "null" {
					t.Errorf("data %s, want null: the operation ran and its field failed", r.data)
				}
			}},
		{row: "A4", name: "JWT with crit", h: jwtH, status: 401, code: graph.CodeUnauthenticated, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ headPosition }"), bearer(token(map[string]any{"crit": []string{"foo"}}, jwt.MapClaims{"role": "admin", "exp": exp}))...)
			}},
		{row: "A4", name: "JWT with a string exp", h: jwtH, status: 401, code: graph.CodeUnauthenticated, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(query("{ headPosition }"), bearer(token(nil, jwt.MapClaims{"role": "admin", "exp": fmt.Sprint(exp)}))...)
			}},
		{row: "C3", name: "JSON nested 10,000 deep", h: open, status: 400, code: graph.CodeBadUserInput, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(`{"query": "{ headPosition }", "variables": {"x": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`)
			},
			check: wantMessage(fmt.Sprintf("nested deeper than %d levels", graph.MaxJSONDepth))},
		{row: "C3", name: "expectedVersion 1.5", h: open, status: 200, code: graph.CodeBadUserInput, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(mustJSON(map[string]any{"query": appendQ, "variables": map[string]any{"s": "c3-1", "v": json.Number("1.5")}}))
			},
			check: wantMessage("1.5 is not an Int")},
		{row: "C3", name: "stream id ストリーム", h: open, status: 200, code: graph.CodeBadUserInput, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(mustJSON(map[string]any{"query": appendQ, "variables": map[string]any{"s": "ストリーム"}}))
			},
			check: wantMessage(`contains 'ス' at offset 0`)},
		{row: "C4", name: "a 10 KB event id", h: open, status: 200, code: graph.CodeBadUserInput, maxBody: smallBody,
			send: func(h *harness) rawResponse {
				return h.postRaw(mustJSON(map[string]any{"query": appendQ, "variables": map[string]any{"s": "c4-1", "id": strings.Repeat("é", 5000)}}))
			},
			check: wantMessage(`"` + strings.Repeat("é", 64) + `"…`)},
	} {
		t.Run(c.row+" "+c.name, func(t *testing.T) {
			before := c.h.store.HeadPosition()
			r := c.send(c.h)
			if r.status != c.status {
				t.Errorf("status %d, want %d", r.status, c.status)
			}
			if len(r.errs) == 0 || r.errs[0].code() != c.code {
				t.Fatalf("errors %+v, want code %s", r.errs, c.code)
			}
			if c.reason != "" && r.errs[0].Extensions["reason"] != c.reason {
				t.Errorf("reason %v, want %s", r.errs[0].Extensions["reason"], c.reason)
			}
			if len(r.body) > c.maxBody {
				t.Errorf("the response has %d bytes; at most %d are allowed", len(r.body), c.maxBody)
			}
			if r.hasData && c.status != 200 {
				t.Errorf("a refusal has a data entry: %s", r.data)
			}
			if c.check != nil {
				c.check(t, r)
			}
			if after := c.h.store.HeadPosition(); after != before {
				t.Errorf("head position %d -> %d: something was written", before, after)
			}
		})
	}
}

func wantMessage(part string) func(t *testing.T, r rawResponse) {
	return func(t *testing.T, r rawResponse) {
		t.Helper()
		if !strings.Contains(r.errs[0].Message, part) {
			t.Errorf("message %q does not contain %q", r.errs[0].Message, part)
		}
	}
}

// TestAbuseWebsocketHost: a websocket whose Host is not served under auth
// none is refused with 403 before the upgrade.
func TestAbuseWebsocketHost(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{"Origin": {"http://attacker.example"}}
	hdr.Set("Host", "attacker.example")
	_, resp, err := websocket.Dial(ctx, "ws"+h.srv.URL[4:]+"/graphql", &websocket.DialOptions{
		Subprotocols: []string{protoTransportWS}, HTTPHeader: hdr, Host: "attacker.example"})
	if err == nil {
		t.Fatal("the websocket was accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("response %+v, want 403", resp)
	}
}

// TestCheapFirst proves the order of the limits: the rate limit runs before
// parsing and validation. The document is one whose validation costs about
// half a second (1,000 same-named fields with distinct arguments, allowed
// here by raised field and token limits): the first request is validated
// (one validation failure counted), the second, over the rate, is refused
// with 429, and the count of validations does not move.
func TestCheapFirst(t *testing.T) {
	var mu sync.Mutex
	reasons := map[string]int{}
	var refused []time.Duration
	h := newHarness(t, withAPIKeys(t), func(c *graph.EndpointConfig) {
		c.RateLimiter = auth.NewRateLimiter(0.001, 1)
		c.MaxFields, c.MaxTokens = 100000, 100000
		c.Resolver.Observer.Rejected = func(_ context.Context, reason string) {
			mu.Lock()
			reasons[reason]++
			mu.Unlock()
		}
		// Refusals reach the duration metric and the slow-operation log.
		c.Resolver.Observer.Operation = func(_ context.Context, kind string, d time.Duration, failed bool) {
			mu.Lock()
			if kind == "refused" && failed {
				refused = append(refused, d)
			}
			mu.Unlock()
		}
	})
	count := func(reason string) int {
		mu.Lock()
		defer mu.Unlock()
		return reasons[reason]
	}
	doc := func(name string) string {
		return query("query " + name + " { " + repeat(1000, func(i int) string { return fmt.Sprintf(`stream(id:"s%d"){id}`, i) }) + "}")
	}
	key := bearer("reader-all-0000000000000000")
	r := h.postRaw(doc("First"), key...)
	if len(r.errs) == 0 || r.errs[0].code() != graph.CodeValidationFailed || count(graph.CodeValidationFailed) != 1 {
		t.Fatalf("the first request was not validated: %d validation failures, errors %.300s", count(graph.CodeValidationFailed), r.body)
	}
	r = h.postRaw(doc("Second"), key...)
	if r.status != http.StatusTooManyRequests || len(r.errs) != 1 || r.errs[0].code() != graph.CodeRateLimited {
		t.Fatalf("over the rate: status %d, body %.300s", r.status, r.body)
	}
	if n := count(graph.CodeValidationFailed); n != 1 {
		t.Errorf("the over-rate document was validated: %d validation failures, want 1", n)
	}
	if n := count(graph.ReasonRateLimited); n != 1 {
		t.Errorf("%d rate-limit rejections, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 2 {
		t.Errorf("%d refusals observed, want 2 (the validation failure and the 429)", len(refused))
	}
}
