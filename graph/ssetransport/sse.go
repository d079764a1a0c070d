// Package ssetransport is Hindsight's SSE transport for gqlgen: a
// graphql.Transport for both modes of graphql-sse's PROTOCOL.md. In distinct
// connections mode, one operation per POST with Accept: text/event-stream is
// answered with "next" events and a final "complete"; single connection mode
// is described in single.go.
//
// gqlgen ships an SSE transport, but its keep-alive goroutine writes to the
// response without knowing whether the handler has returned: with a client
// that stops reading, a keep-alive blocked in its write completes after the
// handler returned, and net/http's response panics (found by the stalled
// client test). Here the keep-alive is a timer whose writes take the
// stream's lock and check that the stream is still open, the handler closes
// it under the same lock before it returns, and nothing writes after.
//
// Operations run through gqlgen's executor (CreateOperationContext,
// DispatchOperation), so validation, complexity, extensions and response
// interceptors behave as over POST. An operation refused before execution
// (access, rate limit, parse, validation, limits) gets a status and a JSON
// body (Config.Refuse), not a stream: only what happens after execution
// started comes as events. A response that is only data (every event
// of a subscription, shared encodings included) is written as it is, without
// being encoded again.
package ssetransport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Config configures the transport.
type Config struct {
	KeepAlive    time.Duration // a comment line this often while nothing else is written
	WriteTimeout time.Duration // one write may block this long; then the stream ends
	// Open admits a stream: it returns the stream's context, whose end
	// completes the stream (shutdown), and release, called when the stream
	// has ended. If !ok it has written the refusal. The request body has
	// been read and checked (size, JSON text) by the caller.
	Open func(w http.ResponseWriter, r *http.Request) (ctx context.Context, release func(), ok bool)

	// Single connection mode: Reserve admits a PUT (release is called
	// once the reservation is taken by its stream or lapses; if !ok it has
	// written the refusal); a reservation lapses after ReserveTimeout; Owner
	// names the principal of a request, to whom a reservation belongs; a
	// stream runs at most MaxOperations operations at once, one more gets
	// TooMany's error.
	Reserve        func(w http.ResponseWriter, r *http.Request) (release func(), ok bool)
	ReserveTimeout time.Duration
	Owner          func(ctx context.Context) string
	MaxOperations  int
	TooMany        func(ctx context.Context) *gqlerror.Error

	// Decode reads the GraphQL parameters of a POST's body, in both modes;
	// with, if not nil, adds to the operation's context what the operation
	// needs of the body; msg, when not empty, is why the body is refused
	// (400, BAD_USER_INPUT). Nil decodes the body with encoding/json.
	Decode func(r *http.Request) (params *graphql.RawParams, with func(context.Context) context.Context, msg string)

	// Refuse answers an operation refused before execution (errs; resp is
	// what gqlgen's DispatchError made of them) with a status and a JSON
	// body, before any stream opens. Nil answers 400 with resp.
	Refuse func(w http.ResponseWriter, r *http.Request, errs gqlerror.List, resp *graphql.Response)
}

// Transport is the SSE transport.
type Transport struct {
	cfg Config
	res reservations
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a transport with cfg.
func New(cfg Config) *Transport { return &Transport{cfg: cfg} }

// Supports reports whether r asks for a stream of one operation, or belongs
// to single connection mode.
func (t *Transport) Supports(r *http.Request) bool {
	return isSingle(r) || (r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream"))
}

// Do serves r.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if isSingle(r) {
		t.single(w, r, exec)
		return
	}
	ctx, release, ok := t.cfg.Open(w, r)
	if !ok {
		return
	}
	defer release()
	start := graphql.Now()
	params, with, msg := t.decode(r)
	if msg != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		resp := exec.DispatchError(ctx, gqlerror.List{{Message: msg, Extensions: map[string]any{"code": "BAD_USER_INPUT"}}})
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	if with != nil {
		ctx = with(ctx)
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		// Refused before anything is streamed: a status, as for POST.
		t.refuse(w, r, errs, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		return
	}

	s := t.startStream(w)
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	responses, ctx := exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		if !s.next(resp) {
			return // the client is gone or does not read
		}
	}
	s.complete()
}

func (t *Transport) refuse(w http.ResponseWriter, r *http.Request, errs gqlerror.List, resp *graphql.Response) {
	if t.cfg.Refuse != nil {
		t.cfg.Refuse(w, r, errs, resp)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(resp)
}

// startStream answers with an event stream and starts its keep-alive.
func (t *Transport) startStream(w http.ResponseWriter) *stream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w), timeout: t.cfg.WriteTimeout, every: t.cfg.KeepAlive}
	s.mu.Lock()
	s.write(keepAliveComment)
	s.ka = time.AfterFunc(s.every, s.keepAlive)
	s.mu.Unlock()
	return s
}

var (
	keepAliveComment = []byte(":\n\n")
	nextOpen         = []byte("event: next\ndata: {\"data\":")
	nextOpenRaw      = []byte("event: next\ndata: ")
	nextCloseData    = []byte("}\n\n")
	nextClose        = []byte("\n\n")
	completeEvent    = []byte("event: complete\ndata:\n\n")
)

// stream is one response stream. Every write takes mu; after close nothing
// is written.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	every   time.Duration

	mu     sync.Mutex
	ka     *time.Timer
	closed bool
	failed bool
}

// write writes parts and flushes them, with a deadline. Under mu.
func (s *stream) write(parts ...[]byte) bool {
	if s.closed || s.failed {
		return false
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	for _, p := range parts {
		if _, err := s.w.Write(p); err != nil {
			s.failed = true
			return false
		}
	}
	if err := s.rc.Flush(); err != nil {
		s.failed = true
		return false
	}
	return true
}

// next writes a response as a "next" event.
func (s *stream) next(resp *graphql.Response) bool {
	var payload []byte
	plain := len(resp.Errors) == 0 && len(resp.Extensions) == 0 && resp.Label == "" && resp.Path == nil &&
		resp.HasNext == nil && len(resp.Data) > 0 && bytes.IndexByte(resp.Data, '\n') < 0
	if !plain {
		var err error
		if payload, err = json.Marshal(resp); err != nil {
			return false
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ka.Reset(s.every)
	if plain {
		return s.write(nextOpen, resp.Data, nextCloseData)
	}
	return s.write(nextOpenRaw, payload, nextClose)
}

func (s *stream) complete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(completeEvent)
}

func (s *stream) keepAlive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.write(keepAliveComment) {
		s.ka.Reset(s.every)
	}
}

// close ends the stream: nothing is written after it returns.
func (s *stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.ka.Stop()
}

// decode reads an operation's parameters from a POST's body, with
// cfg.Decode or else encoding/json.
func (t *Transport) decode(r *http.Request) (*graphql.RawParams, func(context.Context) context.Context, string) {
	if t.cfg.Decode != nil {
		return t.cfg.Decode(r)
	}
	var params graphql.RawParams
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		return nil, nil, "the request body is not a JSON object of a GraphQL request"
	}
	return &params, nil, ""
}
