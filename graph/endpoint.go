package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"golang.org/x/sync/semaphore"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph/generated"
	"github.com/hindsight-dev/hindsight/graph/model"
	"github.com/hindsight-dev/hindsight/graph/ssetransport"
	"github.com/hindsight-dev/hindsight/graph/wstransport"
	"github.com/hindsight-dev/hindsight/projections"
)

// EndpointConfig configures the /graphql endpoint. Zero fields take the
// defaults below.
type EndpointConfig struct {
	Resolver *Resolver
	Log      *slog.Logger // nil = slog.Default()

	// AllowedOrigins are the origins (e.g. "https://app.example.com") that
	// may open websockets besides same-origin pages and clients that send
	// no Origin (non-browsers). "*" allows every origin.
	AllowedOrigins []string
	// AllowedHosts are the host names (without port) served under auth none
	// besides localhost, 127.0.0.1 and ::1; "*" allows any. Other Host
	// headers get 403, which defeats DNS rebinding: a page of
	// attacker.example resolved to 127.0.0.1 still sends Host:
	// attacker.example. With credentials required, every host is served.
	AllowedHosts []string

	MaxBodyBytes            int64         // request body and websocket message limit; default 8 MiB
	MaxComplexity           int           // gqlgen complexity limit; default 20,000
	MaxTokens               int           // gqlparser token limit per document; default 10,000
	MaxFields               int           // fields in a document, fragments counted where spread; default 300
	MaxDepth                int           // fields nested in an operation ({ a { b } } is 2); default 15
	MaxAliases              int           // aliases in an operation, fragments counted where spread; default 30
	MaxDirectives           int           // directives in an operation, likewise; default 50
	MaxSubscriptionsPerConn int           // per websocket connection; default 100
	MaxStreams              int           // concurrent websocket and SSE connections; default 10,000
	KeepAlive               time.Duration // websocket ka/ping and SSE keep-alive interval; default 15s
	InitTimeout             time.Duration // websocket connection_init deadline; default 10s
	StreamWriteTimeout      time.Duration // one websocket/SSE write may block this long; default 30s
	// Streams caps long-lived connections and subscriptions per client
	// address and per principal (streamlimits.go).
	Streams StreamLimits

	// Auth authenticates requests; nil means auth.None (everyone is an
	// anonymous admin).
	Auth auth.Authenticator
	// RateLimiter, when set, limits operations per principal; an operation
	// over the limit fails with RATE_LIMITED.
	RateLimiter *auth.RateLimiter
	// DisableIntrospection refuses __schema and __type and turns off "did
	// you mean" suggestions in validation errors, which would otherwise
	// reveal the schema bit by bit.
	DisableIntrospection bool
	// HeavyAtNormalPriority executes heavy operations where they are asked
	// for, at the process's priority, even when other operations run or
	// wait: by default such a heavy operation runs on a thread at nice 19
	// (priority.go), so that cheap requests get the cores first.
	HeavyAtNormalPriority bool
	// HeavyShare is the share of the heavy lane's time heavy work may take
	// while other operations wait for it: the lane rests in between
	// (lanerest.go). 0 means DefaultHeavyShare, 1 no rest.
	HeavyShare float64
}

// Defaults of EndpointConfig.
const (
	DefaultMaxBodyBytes            = 8 << 20
	DefaultMaxComplexity           = 20000
	DefaultMaxTokens               = 10000
	DefaultMaxFields               = 300
	DefaultMaxDepth                = 15
	DefaultMaxAliases              = 30
	DefaultMaxDirectives           = 50
	DefaultMaxSubscriptionsPerConn = 100
	DefaultMaxStreams              = 10000
	DefaultKeepAlive               = 15 * time.Second
	DefaultInitTimeout             = 10 * time.Second
	DefaultStreamWriteTimeout      = 30 * time.Second
)

func (c *EndpointConfig) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.HeavyShare == 0 {
		c.HeavyShare = DefaultHeavyShare
	}
	def(&c.MaxComplexity, DefaultMaxComplexity)
	def(&c.MaxTokens, DefaultMaxTokens)
	def(&c.MaxFields, DefaultMaxFields)
	def(&c.MaxDepth, DefaultMaxDepth)
	def(&c.MaxAliases, DefaultMaxAliases)
	def(&c.MaxDirectives, DefaultMaxDirectives)
	def(&c.MaxSubscriptionsPerConn, DefaultMaxSubscriptionsPerConn)
	def(&c.MaxStreams, DefaultMaxStreams)
	defDur(&c.KeepAlive, DefaultKeepAlive)
	defDur(&c.InitTimeout, DefaultInitTimeout)
	defDur(&c.StreamWriteTimeout, DefaultStreamWriteTimeout)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Auth == nil {
		c.Auth = auth.None{}
	}
}

// Endpoint serves /graphql: queries and mutations over POST and GET (GET for
// queries only), subscriptions over websocket (graphql-transport-ws and the
// legacy graphql-ws) and SSE (graphql-sse's distinct-connections mode).
type Endpoint struct {
	cfg     EndpointConfig
	gql     *handler.Server
	hub     *streamHub
	ws      *wstransport.Transport
	sse     *ssetransport.Transport
	lim     *streamLimiter
	log     *slog.Logger
	present graphql.ErrorPresenterFunc
	bodies  *semaphore.Weighted // admission of large bodies (admission.go)
	lane    *heavyLane          // the heavy lane (lane.go)

	bodyBufs bodyBuffers // buffers of large bodies, read into again (body.go)
}

// NewEndpoint builds the endpoint: gqlgen's handler.New with explicit
// transports and extensions, wrapped with the HTTP rules gqlgen leaves to us.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	cfg.setDefaults()
	if cfg.Resolver.Log == nil {
		cfg.Resolver.Log = cfg.Log
	}
	e := &Endpoint{cfg: cfg, hub: &streamHub{max: cfg.MaxStreams, active: map[uint64]context.CancelFunc{}},
		log: cfg.Log, lim: newStreamLimiter(cfg.Streams)}
	e.present = presenter(cfg.Log, !cfg.DisableIntrospection, e.rejected)
	cfg.Resolver.streams = e.hub.count
	cfg.Resolver.verifySlot = semaphore.NewWeighted(1)
	e.bodies = semaphore.NewWeighted(2 * cfg.MaxBodyBytes)
	e.lane = newHeavyLane(cfg.HeavyShare)
	if cfg.HeavyAtNormalPriority {
		e.lane.prio = lowPriority{}
	}

	es := generated.NewExecutableSchema(generated.Config{Resolvers: cfg.Resolver, Complexity: complexity(cfg.MaxComplexity)})
	srv := handler.New(es)

	// Transports, in the order gqlgen tries them. SSE comes before POST, so
	// that a POST with Accept: text/event-stream streams.
	srv.AddTransport(e.websocketTransport())
	srv.AddTransport(e.sseTransport())
	srv.AddTransport(transport.Options{AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions}})
	srv.AddTransport(httpTransport{obs: cfg.Resolver.Observer, lane: e.lane}) // POST and GET, with our status codes

	// The limits, cheapest first (limits.go): the rate limit before parsing,
	// the linear count of the document before validation, capped errors.
	reject := e.rejected
	cache := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(cfg.MaxTokens)
	srv.SetValidationRulesFn(cappedRules(func() { reject(context.Background(), CodeValidationFailed) }))
	srv.SetErrorPresenter(e.present)
	srv.SetRecoverFunc(recoverFunc(cfg.Log))
	srv.Use(rateGate{limiter: cfg.RateLimiter, reject: reject})
	srv.Use(persistedQueries()) // apq.go
	srv.Use(documentGate{cache: cache, reject: reject, lane: e.lane, vars: strictVariables{schema: es.Schema()}, limits: docLimits{
		maxTokens: cfg.MaxTokens, maxFields: cfg.MaxFields, maxDepth: cfg.MaxDepth, maxAliases: cfg.MaxAliases,
		maxDirectives: cfg.MaxDirectives, noIntrospection: cfg.DisableIntrospection}})
	if cfg.DisableIntrospection {
		srv.SetDisableSuggestion(true)
	} else {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	srv.Use(operationObserver{obs: cfg.Resolver.Observer})
	srv.Use(errorCap{})
	srv.Use(subscriptionGuard{present: e.present, fanout: newFanout(), lim: e.lim})
	srv.Use(e.lane) // the last context mutator, after the complexity limit (lane.go)
	e.gql = srv
	return e
}

// complexity makes a connection cost its page size times (its nodes' fields
// plus pageNodeCost), so that what a page costs to serve, mostly per node
// whatever is selected, is what the limit bounds: at the default of 20,000 a
// request gets at most two pages of 1,000 events with a few fields, or one
// with every field (cmd/abusebench measured 16 pages of 1,000 ids at 127 ms
// of CPU and 50 MiB when the limit was 50,000 and nodes cost only their
// fields). Stream.verify costs more than half the limit, so that an operation verifies at
// most one stream: verify reads the whole stream from the store (a scan on
// FerretDB), and 30 aliases of it made the store time out (cmd/abusebench).
// Other fields cost gqlgen's default of 1 plus their children.
func complexity(maxComplexity int) generated.ComplexityRoot {
	const pageNodeCost = 5
	var c generated.ComplexityRoot
	c.Stream.Verify = func(child int) int { return maxComplexity/2 + 1 + child }
	page := func(child int, first *int, def int) int {
		n := def
		if first != nil && *first > 0 {
			n = *first
		}
		return 1 + (child+pageNodeCost)*n
	}
	c.Query.Events = func(child int, _ *int64, _ []string, _ *string, first *int, _ *string) int {
		return page(child, first, DefaultPageSize)
	}
	c.Stream.Events = func(child int, _ *int, _ *bool, first *int, _ *string) int {
		return page(child, first, DefaultPageSize)
	}
	c.Query.Orders = func(child int, _ *projections.OrderStatus, _ *string, _ *model.PointInTime, first *int, _ *string) int {
		return page(child, first, 50)
	}
	c.Query.ProjectionPartitions = func(child int, _ string, _ *model.PointInTime, _ *string, first *int, _ *string) int {
		return page(child, first, 50)
	}
	return c
}

// ServeHTTP serves /graphql.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(WithRequestID(r.Context(), id))
	if !e.hostAllowed(r) {
		// Before the websocket upgrade and SSE, so that both are covered.
		e.refuse(w, r, http.StatusForbidden, CodeForbidden, ReasonHost, "this server does not answer to the host name "+quote(r.Host)+"; see HINDSIGHT_ALLOWED_HOSTS")
		return
	}
	if r.Header.Get("Upgrade") != "" { // what gqlgen's websocket transport takes
		// Credentials come with connection_init (authenticateWebsocket).
		e.serveWebsocket(w, r)
		return
	}
	if r.Method != http.MethodOptions {
		p, err := e.authenticate(r.Context(), r, r.Header.Get("Authorization"))
		if err != nil {
			status, code := http.StatusUnauthorized, CodeUnauthenticated
			if errors.Is(err, auth.ErrForbidden) {
				status, code = http.StatusForbidden, CodeForbidden
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hindsight"`)
			}
			e.log.InfoContext(r.Context(), "request refused", "request_id", id, "code", code, "reason", err)
			e.refuse(w, r, status, code, code, err.Error())
			return
		}
		r = r.WithContext(auth.WithPrincipal(r.Context(), p))
	}
	switch {
	case e.sse.Supports(r): // POST with Accept: text/event-stream, or graphql-sse's single connection mode
		e.serveSSE(w, r)
	default:
		e.serveRequest(w, r)
	}
}

// serveRequest handles plain POST, GET and OPTIONS, answering with a coded
// GraphQL error the cases where gqlgen would answer without a code.
func (e *Endpoint) serveRequest(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions, http.MethodHead:
	case http.MethodGet:
		q := r.URL.Query()
		for _, p := range []string{"query", "variables", "extensions"} {
			if err := CheckJSONText([]byte(q.Get(p))); err != nil {
				e.refuse(w, r, http.StatusBadRequest, CodeBadUserInput, "NOT_TEXT", "the "+p+" parameter is "+err.Error()+"; nothing was written")
				return
			}
		}
	case http.MethodPost:
		if !e.jsonBody(w, r) {
			return
		}
		release, ok := e.admitBody(r)
		if !ok {
			return // the client is gone
		}
		defer release()
		if !e.readBody(w, r) {
			return
		}
		defer e.releaseBody(r.Body) // after gqlgen has answered: its buffer is read into again
		if !e.singleOperation(w, r) {
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		e.refuse(w, r, http.StatusMethodNotAllowed, CodeBadUserInput, ReasonMethod, "use POST, or GET for queries")
		return
	}
	e.gql.ServeHTTP(w, r)
}

// CloseStreams starts ending every websocket (close code 1001, "going away",
// so that clients reconnect and resume) and SSE stream (completed), and
// refuses new ones. It does not wait; see Shutdown.
func (e *Endpoint) CloseStreams() { e.hub.shutdown() }

// Shutdown calls CloseStreams and waits until the streams' handlers have
// returned or ctx ends.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.CloseStreams()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for e.hub.count() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("graph: %d streams still open: %w", e.hub.count(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Streams returns the number of open websocket and SSE connections.
func (e *Endpoint) Streams() int { return e.hub.count() }

// OriginAllowed reports whether a browser page of r's Origin may use the API
// over a websocket: requests without Origin (non-browsers), same-origin
// pages, and the listed origins ("*" = any).
func OriginAllowed(allowed []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	return false
}

// refuse answers a request refused outside gqlgen with writeError and
// counts the refusal by reason.
func (e *Endpoint) refuse(w http.ResponseWriter, r *http.Request, status int, code, reason, msg string) {
	e.rejected(r.Context(), reason)
	writeError(w, status, code, msg)
}

// writeError answers with a GraphQL error response outside gqlgen.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(refusal(gqlerror.List{{
		Message: msg, Extensions: map[string]any{"code": code},
	}}))
}
