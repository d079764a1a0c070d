package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Shutdown()
	os.Exit(code)
}

// harness is the real /graphql endpoint on a real store (the shared embedded
// FerretDB, or HINDSIGHT_MONGODB_URI), on its own database.
type harness struct {
	t        *testing.T
	store    *eventstore.Store
	proj     *projections.Service
	endpoint *graph.Endpoint
	srv      *httptest.Server
	gql      *client.Client
	logs     *syncBuffer
}

type harnessOption func(*graph.EndpointConfig)

// backgroundSubscribers is how many store subscriptions a harness holds
// before any client subscribes: the order projector's and the declarative
// projections' reader of definitions.
const backgroundSubscribers = 2

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	mc, db := storetest.Client(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := eventstore.Open(ctx, mc, db, eventstore.WithLogger(log))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if err := store.WaitReady(ctx); err != nil {
		t.Fatalf("store ready: %v", err)
	}
	proj, err := projections.New(store, projections.Options{Logger: log})
	if err != nil {
		t.Fatalf("open projections: %v", err)
	}
	if err := proj.Open(ctx); err != nil {
		t.Fatalf("open projections: %v", err)
	}
	cfg := graph.EndpointConfig{
		Resolver: &graph.Resolver{Store: store, Projections: proj, Log: log},
		Log:      log,
		// gqlgen's test client sends Host: example.com (httptest.NewRequest).
		AllowedHosts: []string{"example.com"},
	}
	for _, o := range opts {
		o(&cfg)
	}
	t.Cleanup(func() { // after serveEndpoint's: cleanups run last first
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = proj.Close(ctx)
		_ = store.Close(ctx)
	})
	ep, srv := serveEndpoint(t, cfg)
	return &harness{t: t, store: store, proj: proj, endpoint: ep, srv: srv, logs: logs,
		gql: client.New(srv.Config.Handler, client.Path("/graphql"))}
}

// serveEndpoint serves an endpoint made of cfg at /graphql of a test server,
// both shut down when the test ends.
func serveEndpoint(tb testing.TB, cfg graph.EndpointConfig) (*graph.Endpoint, *httptest.Server) {
	ep := graph.NewEndpoint(cfg)
	mux := http.NewServeMux()
	mux.Handle("/graphql", ep)
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		srv.Close()
	})
	return ep, srv
}

// gqlError is one error of a response, as a client sees it.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string { s, _ := e.Extensions["code"].(string); return s }

// do runs an operation through gqlgen's test client and returns the data as
// JSON and the errors.
func (h *harness) do(query string, vars map[string]any) (json.RawMessage, []gqlError) {
	h.t.Helper()
	resp, err := h.gql.RawPost(query, clientVars(vars)...)
	if err != nil {
		h.t.Fatalf("post: %v", err)
	}
	data, _ := json.Marshal(resp.Data)
	var errs []gqlError
	if len(resp.Errors) > 0 {
		if err := json.Unmarshal(resp.Errors, &errs); err != nil {
			h.t.Fatalf("errors %s: %v", resp.Errors, err)
		}
	}
	return data, errs
}

func clientVars(vars map[string]any) []client.Option {
	var opts []client.Option
	for k, v := range vars {
		opts = append(opts, client.Var(k, v))
	}
	return opts
}

// mustDo runs an operation that must succeed and decodes its data into out.
func (h *harness) mustDo(query string, vars map[string]any, out any) {
	h.t.Helper()
	data, errs := h.do(query, vars)
	if len(errs) > 0 {
		h.t.Fatalf("unexpected errors: %+v\nquery: %s", errs, query)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("decode %s: %v", data, err)
		}
	}
}

// httpDo sends a raw HTTP request to the test server and decodes a GraphQL
// response body.
func (h *harness) httpDo(req *http.Request) (int, []gqlError, json.RawMessage) {
	h.t.Helper()
	r := h.raw(req)
	return r.status, r.errs, r.data
}

func (h *harness) post(body string, header ...string) (int, []gqlError, json.RawMessage) {
	h.t.Helper()
	r := h.postRaw(body, header...)
	return r.status, r.errs, r.data
}

// appendEvents appends n events of one type to a stream directly through
// the store, with data {"i": k} for k = from..from+n-1.
func (h *harness) appendEvents(stream, typ string, from, n int) []eventstore.Event {
	h.t.Helper()
	var out []eventstore.Event
	for n > 0 {
		batch := min(n, 500)
		evs := make([]eventstore.NewEvent, batch)
		for i := range evs {
			evs[i] = eventstore.NewEvent{Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, from))}
			from++
		}
		res, err := h.store.Append(context.Background(), stream, eventstore.Any{}, evs...)
		if err != nil {
			h.t.Fatalf("append to %s: %v", stream, err)
		}
		out = append(out, res.Events...)
		n -= batch
	}
	return out
}

// wantCode asserts that errs is exactly one error with the code.
func wantCode(t *testing.T, errs []gqlError, code string) gqlError {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("want one %s error, got %+v", code, errs)
	}
	if got := errs[0].code(); got != code {
		t.Fatalf("want code %s, got %s (%q)", code, got, errs[0].Message)
	}
	return errs[0]
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer collects the server's log; tests print it when they fail and
// check that no internal detail was lost from it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
