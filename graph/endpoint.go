package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

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

	MaxBodyBytes            int64         // request body and websocket message limit; default 8 MiB
	MaxComplexity           int           // gqlgen complexity limit; default 50,000
	MaxTokens               int           // gqlparser token limit per document; default 10,000
	MaxDepth                int           // fields nested in an operation ({ a { b } } is 2); default 15
	MaxAliases              int           // aliases in an operation, fragments counted where spread; default 30
	MaxDirectives           int           // directives in an operation, likewise; default 50
	MaxSubscriptionsPerConn int           // per websocket connection; default 100
	MaxStreams              int           // concurrent websocket and SSE connections; default 10,000
	KeepAlive               time.Duration // websocket ka/ping and SSE keep-alive interval; default 15s
	InitTimeout             time.Duration // websocket connection_init deadline; default 10s
	StreamWriteTimeout      time.Duration // one websocket/SSE write may block this long; default 30s
	// StreamFlushDelay is how long a websocket may hold messages after a
	// write to send them together: the first message after a quiet spell
	// goes out at once, later ones at most this much later, in one system
	// call. It bounds the latency it adds; under fan-out it saves most of
	// the writes. Default 20ms; negative = write every message at once.
	StreamFlushDelay time.Duration
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
}

// Defaults of EndpointConfig.
const (
	DefaultMaxBodyBytes            = 8 << 20
	DefaultMaxComplexity           = 50000
	DefaultMaxTokens               = 10000
	DefaultMaxDepth                = 15
	DefaultMaxAliases              = 30
	DefaultMaxDirectives           = 50
	DefaultMaxSubscriptionsPerConn = 100
	DefaultMaxStreams              = 10000
	DefaultKeepAlive               = 15 * time.Second
	DefaultInitTimeout             = 10 * time.Second
	DefaultStreamWriteTimeout      = 30 * time.Second
	DefaultStreamFlushDelay        = 20 * time.Millisecond
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
	def(&c.MaxComplexity, DefaultMaxComplexity)
	def(&c.MaxTokens, DefaultMaxTokens)
	def(&c.MaxDepth, DefaultMaxDepth)
	def(&c.MaxAliases, DefaultMaxAliases)
	def(&c.MaxDirectives, DefaultMaxDirectives)
	def(&c.MaxSubscriptionsPerConn, DefaultMaxSubscriptionsPerConn)
	def(&c.MaxStreams, DefaultMaxStreams)
	defDur(&c.KeepAlive, DefaultKeepAlive)
	defDur(&c.InitTimeout, DefaultInitTimeout)
	defDur(&c.StreamWriteTimeout, DefaultStreamWriteTimeout)
	if c.StreamFlushDelay == 0 {
		c.StreamFlushDelay = DefaultStreamFlushDelay
	}
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
}

// NewEndpoint builds the endpoint: gqlgen's handler.New with explicit
// transports and extensions, wrapped with the HTTP rules gqlgen leaves to us.
func NewEndpoint(cfg EndpointConfig) *Endpoint {
	cfg.setDefaults()
	if cfg.Resolver.Log == nil {
		cfg.Resolver.Log = cfg.Log
	}
	e := &Endpoint{cfg: cfg, hub: &streamHub{max: cfg.MaxStreams, active: map[uint64]context.CancelFunc{}},
		log: cfg.Log, present: presenter(cfg.Log), lim: newStreamLimiter(cfg.Streams)}
	cfg.Resolver.streams = e.hub.count

	es := generated.NewExecutableSchema(generated.Config{Resolvers: cfg.Resolver, Complexity: complexity()})
	srv := handler.New(es)

	// Transports, in the order gqlgen tries them. SSE comes before POST, so
	// that a POST with Accept: text/event-stream streams.
	srv.AddTransport(e.websocketTransport())
	srv.AddTransport(e.sseTransport())
	srv.AddTransport(transport.Options{AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions}})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(cfg.MaxTokens)
	srv.SetErrorPresenter(e.present)
	srv.SetRecoverFunc(recoverFunc(cfg.Log))
	if cfg.DisableIntrospection {
		srv.SetDisableSuggestion(true)
	} else {
		srv.Use(extension.Introspection{})
	}
	srv.Use(strictVariables{schema: es.Schema()})
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	srv.Use(methodGuard{})
	srv.Use(queryLimits{maxDepth: cfg.MaxDepth, maxAliases: cfg.MaxAliases, maxDirectives: cfg.MaxDirectives,
		noIntrospection: cfg.DisableIntrospection})
	srv.Use(accessGuard{limiter: cfg.RateLimiter})
	srv.Use(operationObserver{obs: cfg.Resolver.Observer})
	srv.Use(subscriptionGuard{present: e.present, fanout: newFanout(), lim: e.lim})
	e.gql = srv
	return e
}

// complexity makes a connection cost its page size times its nodes, so that
// a few aliases of 1,000-event pages hit the complexity limit; other fields
// cost gqlgen's default of 1 plus their children.
func complexity() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	page := func(child int, first *int, def int) int {
		n := def
		if first != nil && *first > 0 {
			n = *first
		}
		return 1 + child*n
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
			writeError(w, status, code, err.Error())
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
		for _, p := range []string{"variables", "extensions"} {
			if v := q.Get(p); v != "" && !json.Valid([]byte(v)) {
				writeError(w, http.StatusBadRequest, CodeBadUserInput, "the "+p+" parameter is not valid JSON")
				return
			}
		}
		for _, p := range []string{"query", "variables", "extensions"} {
			if err := CheckJSONText([]byte(q.Get(p))); err != nil {
				writeError(w, http.StatusBadRequest, CodeBadUserInput, "the "+p+" parameter is "+err.Error()+"; nothing was written")
				return
			}
		}
	case http.MethodPost:
		if !e.jsonBody(w, r) || !e.readBody(w, r) || !e.singleOperation(w, r) {
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, CodeBadUserInput, "use POST, or GET for queries")
		return
	}
	ctx := context.WithValue(r.Context(), plainHTTPKey{}, r.Method)
	e.gql.ServeHTTP(w, r.WithContext(ctx))
}

// serveSSE handles a subscription (or any operation) over SSE. The body is
// read here, under the server's read timeout; then the connection's deadlines
// are cleared, since a stream lives as long as the client wants, and each
// write gets its own deadline instead.
func (e *Endpoint) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && (!e.jsonBody(w, r) || !e.readBody(w, r) || !e.singleOperation(w, r)) {
		return
	}

	e.gql.ServeHTTP(w, r) // ssetransport, which registers the stream (openStream)
}

// openStream registers a long-lived connection (SSE or websocket) with the
// hub, which caps their number and ends them at shutdown, and clears the
// server's read and write deadlines, which streams are exempt from. done
// unregisters it; on !ok the refusal has been written.
func (e *Endpoint) openStream(w http.ResponseWriter, r *http.Request) (context.Context, *http.ResponseController, func(), bool) {
	ctx, cancel := context.WithCancel(r.Context())
	id, err := e.hub.add(cancel)
	if err != nil {
		cancel()
		writeError(w, http.StatusServiceUnavailable, codeOf(err), err.Error())
		return nil, nil, nil, false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return ctx, rc, func() { e.hub.remove(id); cancel() }, true
}

// serveWebsocket checks the origin and hands over to gqlgen, which picks
// the websocket transport (websocket.go).
func (e *Endpoint) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !OriginAllowed(e.cfg.AllowedOrigins, r) {
		writeError(w, http.StatusForbidden, CodeForbidden, "origin not allowed")
		return
	}
	e.gql.ServeHTTP(w, r)
}

// jsonBody accepts only Content-Type: application/json. That is also the
// CSRF defence of POST: a browser sends a cross-origin POST without a
// preflight only with text/plain, application/x-www-form-urlencoded or
// multipart/form-data, and those are refused here, so a page of another
// origin can never make a visitor's browser run a mutation.
func (e *Endpoint) jsonBody(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, CodeBadUserInput, "send the request as Content-Type: application/json")
		return false
	}
	return true
}

// singleOperation refuses array batching (a JSON array of operations), which
// multiplies what one request may cost past every per-operation limit. It
// peeks at the first byte that is not white space.
func (e *Endpoint) singleOperation(w http.ResponseWriter, r *http.Request) bool {
	br := bufio.NewReader(r.Body)
	for {
		b, err := br.Peek(1)
		if err != nil || (b[0] != ' ' && b[0] != '\t' && b[0] != '\r' && b[0] != '\n') {
			break
		}
		_, _ = br.Discard(1)
	}
	if b, err := br.Peek(1); err == nil && b[0] == '[' {
		writeError(w, http.StatusBadRequest, CodeBadUserInput, "batched operations are not supported; send one operation per request")
		return false
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return true
}

// readBody reads the whole body up front and puts it back in r.Body for
// gqlgen. A body over MaxBodyBytes gets 413 with BAD_USER_INPUT, whether its
// Content-Length says so or it turns out too large while being read (a
// chunked body); left to gqlgen, the latter would get 200. An unreadable
// body gets 400. The read happens under the server's read timeout, which
// serveSSE clears afterwards. Memory stays bounded: http.MaxBytesReader
// stops reading just past the limit (and has the connection closed), so the
// buffer never grows beyond about twice MaxBodyBytes.
func (e *Endpoint) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength > e.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, CodeBadUserInput, e.tooLargeMessage())
		return false
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // room to see EOF without growing
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, e.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeBadUserInput, e.tooLargeMessage())
			return false
		}
		writeError(w, http.StatusBadRequest, CodeBadUserInput, "the request body could not be read")
		return false
	}
	if err := CheckJSONText(buf.Bytes()); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadUserInput, "the request body is "+err.Error()+"; nothing was written")
		return false
	}
	r.Body = io.NopCloser(&buf)
	return true
}

func (e *Endpoint) tooLargeMessage() string {
	return "the request body is larger than " + strconv.FormatInt(e.cfg.MaxBodyBytes, 10) + " bytes"
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

// writeError answers with a GraphQL error response outside gqlgen.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{{
		Message: msg, Extensions: map[string]any{"code": code},
	}}})
}

// methodGuard rejects, with a coded error, operations a plain HTTP request
// cannot carry: mutations over GET (gqlgen would answer 406 without a code)
// and subscriptions over plain GET or POST (they need websocket or SSE).
type methodGuard struct{}

type plainHTTPKey struct{}

func (methodGuard) ExtensionName() string                   { return "HindsightMethodGuard" }
func (methodGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (methodGuard) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	method, _ := ctx.Value(plainHTTPKey{}).(string)
	if method == "" || oc.Operation == nil {
		return nil
	}
	switch {
	case oc.Operation.Operation == ast.Subscription:
		return &gqlerror.Error{Message: "subscriptions need a websocket or SSE (Accept: text/event-stream)",
			Extensions: map[string]any{"code": CodeBadUserInput}}
	case method == http.MethodGet && oc.Operation.Operation != ast.Query:
		return &gqlerror.Error{Message: "GET requests only allow queries; send mutations with POST",
			Extensions: map[string]any{"code": CodeBadUserInput}}
	}
	return nil
}

// streamHub tracks long-lived connections (websockets and SSE streams): it
// caps their number and ends them all at shutdown.
type streamHub struct {
	max int

	mu      sync.Mutex
	closing bool
	next    uint64
	active  map[uint64]context.CancelFunc
}

var (
	errShuttingDown       = &codedError{code: CodeShuttingDown, msg: "the server is shutting down; reconnect shortly"}
	errTooManyConnections = &codedError{code: CodeTooManyConnections, msg: "too many open subscription connections; retry later"}
)

func codeOf(err error) string {
	var c *codedError
	if errors.As(err, &c) {
		return c.code
	}
	return CodeInternal
}

func (h *streamHub) add(cancel context.CancelFunc) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closing:
		return 0, errShuttingDown
	case len(h.active) >= h.max:
		return 0, errTooManyConnections
	}
	h.next++
	h.active[h.next] = cancel
	return h.next, nil
}

func (h *streamHub) remove(id uint64) {
	h.mu.Lock()
	delete(h.active, id)
	h.mu.Unlock()
}

func (h *streamHub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closing = true
	for _, cancel := range h.active {
		cancel()
	}
}

func (h *streamHub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

func (h *streamHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.active)
}

// authenticate turns an Authorization header into a principal. In mode none
// it is an anonymous admin named after the client's address, so that rate
// limits apply per client.
func (e *Endpoint) authenticate(ctx context.Context, r *http.Request, header string) (*auth.Principal, error) {
	if !e.cfg.Auth.Required() {
		p, err := e.cfg.Auth.Authenticate(ctx, "")
		if err != nil || r == nil {
			return p, err
		}
		anon := *p
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			anon.Subject += "@" + host
		}
		return &anon, nil
	}
	if header == "" {
		return nil, fmt.Errorf("%w: send Authorization: Bearer <credential>", auth.ErrUnauthenticated)
	}
	cred, ok := auth.BearerToken(header)
	if !ok {
		return nil, fmt.Errorf("%w: the Authorization header must be Bearer <credential>", auth.ErrUnauthenticated)
	}
	return e.cfg.Auth.Authenticate(ctx, cred)
}

// accessGuard checks, once per operation, that the principal's role allows
// the operation's kind (mutations need writer, queries and subscriptions
// reader) and takes a token from its rate limit. Stream prefixes are checked
// by the resolvers, which know the streams.
type accessGuard struct {
	limiter *auth.RateLimiter
}

func (accessGuard) ExtensionName() string                   { return "HindsightAccess" }
func (accessGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g accessGuard) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	p := auth.FromContext(ctx)
	if p == nil {
		return &gqlerror.Error{Message: errUnauthenticated.msg, Extensions: map[string]any{"code": CodeUnauthenticated}}
	}
	if oc.Operation == nil {
		return nil
	}
	need := auth.Reader
	if oc.Operation.Operation == ast.Mutation {
		need = auth.Writer
	}
	if !p.Can(need) {
		return &gqlerror.Error{Message: fmt.Sprintf("%ss need the %s role", oc.Operation.Operation, need),
			Extensions: map[string]any{"code": CodeForbidden}}
	}
	if g.limiter != nil {
		if ok, wait := g.limiter.Allow(p.Subject); !ok {
			return &gqlerror.Error{Message: "rate limit exceeded; retry later",
				Extensions: map[string]any{"code": CodeRateLimited, "retryAfterSeconds": math.Ceil(wait.Seconds()*1000) / 1000}}
		}
	}
	return nil
}

// queryLimits refuses operations deeper, with more aliases or with more
// directives than configured, in the spirit of GraphQL Armor, and
// introspection when it is disabled. Fragments count where they are spread
// (each fragment is measured once), so spreading a fragment does not hide
// its cost. It runs after validation, on the operation that will execute.
type queryLimits struct {
	maxDepth, maxAliases, maxDirectives int
	noIntrospection                     bool
}

func (queryLimits) ExtensionName() string                   { return "HindsightQueryLimits" }
func (queryLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l queryLimits) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := &opMeter{doc: oc.Doc, frags: map[string]*opCost{}}
	c := m.selectionSet(oc.Operation.SelectionSet)
	c.directives = sat(c.directives + len(oc.Operation.Directives))
	for _, v := range oc.Operation.VariableDefinitions {
		c.directives = sat(c.directives + len(v.Directives))
	}
	fail := func(reason, msg string) *gqlerror.Error {
		return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": CodeBadUserInput, "reason": reason}}
	}
	switch {
	case l.noIntrospection && c.introspection:
		return &gqlerror.Error{Message: "introspection is disabled", Extensions: map[string]any{"code": CodeValidationFailed}}
	case c.depth > l.maxDepth:
		return fail("MAX_DEPTH", fmt.Sprintf("the operation is nested %d levels deep; at most %d are allowed", c.depth, l.maxDepth))
	case c.aliases > l.maxAliases:
		return fail("MAX_ALIASES", fmt.Sprintf("the operation has %d aliases; at most %d are allowed", c.aliases, l.maxAliases))
	case c.directives > l.maxDirectives:
		return fail("MAX_DIRECTIVES", fmt.Sprintf("the operation has %d directives; at most %d are allowed", c.directives, l.maxDirectives))
	}
	return nil
}

// opCost is what a selection set adds to an operation.
type opCost struct {
	depth, aliases, directives int
	introspection              bool
}

func (c *opCost) add(o opCost, depthOffset int) {
	c.depth = max(c.depth, sat(o.depth+depthOffset))
	c.aliases = sat(c.aliases + o.aliases)
	c.directives = sat(c.directives + o.directives)
	c.introspection = c.introspection || o.introspection
}

// sat saturates counts, which fragments spread many times can multiply.
func sat(n int) int { return min(n, 1<<30) }

type opMeter struct {
	doc   *ast.QueryDocument
	frags map[string]*opCost
}

func (m *opMeter) selectionSet(set ast.SelectionSet) opCost {
	var c opCost
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			f := opCost{directives: len(s.Directives),
				introspection: s.Name == "__schema" || s.Name == "__type"}
			if s.Alias != "" && s.Alias != s.Name {
				f.aliases = 1
			}
			f.add(m.selectionSet(s.SelectionSet), 0)
			c.add(f, 1)
		case *ast.InlineFragment:
			c.add(opCost{directives: len(s.Directives)}, 0)
			c.add(m.selectionSet(s.SelectionSet), 0)
		case *ast.FragmentSpread:
			c.add(opCost{directives: len(s.Directives)}, 0)
			c.add(m.fragment(s.Name), 0)
		}
	}
	return c
}

func (m *opMeter) fragment(name string) opCost {
	if c, ok := m.frags[name]; ok {
		return *c // measured, or being measured (a cycle, which validation refuses anyway)
	}
	c := &opCost{}
	m.frags[name] = c
	if m.doc == nil {
		return *c
	}
	def := m.doc.Fragments.ForName(name)
	if def == nil {
		return *c
	}
	*c = m.selectionSet(def.SelectionSet)
	c.directives = sat(c.directives + len(def.Directives))
	return *c
}

// operationObserver reports operations to the Observer: the duration of
// each query and mutation, and the start, end and lifetime of each
// subscription.
type operationObserver struct {
	obs Observer
}

func (operationObserver) ExtensionName() string                   { return "HindsightObserver" }
func (operationObserver) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationObserver) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil {
		return next(ctx)
	}
	kind, start := string(oc.Operation.Operation), time.Now()
	if oc.Operation.Operation == ast.Subscription {
		if o.obs.Subscriptions != nil {
			o.obs.Subscriptions(1)
		}
		context.AfterFunc(ctx, func() {
			if o.obs.Subscriptions != nil {
				o.obs.Subscriptions(-1)
			}
			if o.obs.Operation != nil {
				o.obs.Operation(ctx, kind, time.Since(start), false)
			}
		})
		return next(ctx)
	}
	rh := next(ctx)
	var once sync.Once
	return func(ctx context.Context) *graphql.Response {
		resp := rh(ctx)
		once.Do(func() {
			if o.obs.Operation != nil {
				o.obs.Operation(ctx, kind, time.Since(start), resp == nil || len(resp.Errors) > 0)
			}
		})
		return resp
	}
}
