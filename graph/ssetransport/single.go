package ssetransport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Single connection mode (graphql-sse's PROTOCOL.md): one event stream
// carries the results of every operation of a client, which sends them with
// separate requests.
//
//   - PUT reserves a stream: 201 with a one-time token in the body. A
//     reservation that no stream takes within ReserveTimeout lapses.
//   - GET with the token (header X-GraphQL-Event-Stream-Token, or ?token=
//     for EventSource) and Accept: text/event-stream opens the stream: 404
//     for an unknown token, 409 if its stream is already open. The stream
//     stays open until the client closes it (which stops its operations) or
//     the server shuts down.
//   - POST with the token runs an operation whose extensions carry an
//     operationId: 202, and its results come over the stream as
//     {"id": operationId, "payload": result} "next" events and a
//     {"id": operationId} "complete". A request refused before execution
//     gets its errors as an ordinary JSON response with the status of
//     Config.Refuse (400 for one that does not parse or validate); a
//     missing operationId 400, one that runs 409.
//   - DELETE with the token and ?operationId= stops that operation: 200.
//
// A reservation belongs to the principal that made it: requests of another
// principal with its token get 404, as for an unknown token.

// TokenHeader and TokenQuery carry a reservation's token.
const (
	TokenHeader = "X-GraphQL-Event-Stream-Token"
	TokenQuery  = "token"
)

// reservation is one reserved (then open) stream.
type reservation struct {
	token, owner string
	ctx          context.Context // ends with the stream, the lapse of the reservation, or shutdown
	cancel       context.CancelFunc
	release      func() // from Config.Reserve

	mu      sync.Mutex
	stream  *stream       // once open
	open    chan struct{} // closed when the stream opens
	ops     map[string]context.CancelFunc
	opened  bool
	expired *time.Timer
}

type reservations struct {
	mu sync.Mutex
	m  map[string]*reservation
}

func tokenOf(r *http.Request) string {
	if t := r.Header.Get(TokenHeader); t != "" {
		return t
	}
	return r.URL.Query().Get(TokenQuery)
}

// isSingle reports whether r belongs to single connection mode.
func isSingle(r *http.Request) bool {
	return r.Method == http.MethodPut || (tokenOf(r) != "" &&
		(r.Method == http.MethodGet || r.Method == http.MethodPost || r.Method == http.MethodDelete))
}

func (t *Transport) single(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	switch r.Method {
	case http.MethodPut:
		t.reserve(w, r)
		return
	}
	res := t.lookup(r)
	if res == nil {
		writeJSONError(w, http.StatusNotFound, "NOT_FOUND", "no event stream is reserved under this token")
		return
	}
	switch r.Method {
	case http.MethodGet:
		t.serveStream(w, r, res)
	case http.MethodPost:
		t.operation(w, r, res, exec)
	case http.MethodDelete:
		id := r.URL.Query().Get("operationId")
		if id == "" {
			writeJSONError(w, http.StatusBadRequest, "BAD_USER_INPUT", "DELETE needs ?operationId=")
			return
		}
		res.mu.Lock()
		if cancel := res.ops[id]; cancel != nil {
			delete(res.ops, id)
			cancel()
		}
		res.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
}

// reserve answers a PUT with a new token.
func (t *Transport) reserve(w http.ResponseWriter, r *http.Request) {
	release, ok := t.cfg.Reserve(w, r)
	if !ok {
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	res := &reservation{token: hex.EncodeToString(b[:]), owner: t.cfg.Owner(r.Context()), ctx: ctx, cancel: cancel,
		release: release, open: make(chan struct{}), ops: map[string]context.CancelFunc{}}
	t.res.mu.Lock()
	if t.res.m == nil {
		t.res.m = map[string]*reservation{}
	}
	t.res.m[res.token] = res
	t.res.mu.Unlock()
	res.expired = time.AfterFunc(t.cfg.ReserveTimeout, func() {
		res.mu.Lock()
		opened := res.opened
		res.mu.Unlock()
		if !opened {
			t.drop(res)
		}
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(res.token))
}

func (t *Transport) lookup(r *http.Request) *reservation {
	t.res.mu.Lock()
	defer t.res.mu.Unlock()
	res := t.res.m[tokenOf(r)]
	if res == nil || res.owner != t.cfg.Owner(r.Context()) {
		return nil
	}
	return res
}

// drop ends a reservation and everything on it.
func (t *Transport) drop(res *reservation) {
	t.res.mu.Lock()
	delete(t.res.m, res.token)
	t.res.mu.Unlock()
	res.expired.Stop()
	res.cancel()
	res.release()
}

// serveStream serves the GET that opens a reserved stream, until the client
// or the server ends it.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request, res *reservation) {
	res.mu.Lock()
	if res.opened {
		res.mu.Unlock()
		writeJSONError(w, http.StatusConflict, "CONFLICT", "the event stream of this token is already open")
		return
	}
	res.opened = true
	res.mu.Unlock()
	defer t.drop(res)
	res.release() // no longer pending: the stream counts as a connection now
	ctx, release, ok := t.cfg.Open(w, r)
	if !ok {
		return
	}
	defer release()
	s := t.startStream(w)
	defer s.close()
	res.mu.Lock()
	res.stream = s
	close(res.open)
	res.mu.Unlock()
	select {
	case <-ctx.Done(): // shutdown, or the client went away
	case <-r.Context().Done():
	case <-res.ctx.Done():
	}
}

// operation runs a POST of single connection mode.
func (t *Transport) operation(w http.ResponseWriter, r *http.Request, res *reservation, exec graphql.GraphExecutor) {
	start := graphql.Now()
	params, with, msg := t.decode(r)
	if msg != "" {
		writeJSONError(w, http.StatusBadRequest, "BAD_USER_INPUT", msg)
		return
	}
	id, _ := params.Extensions["operationId"].(string)
	if id == "" {
		writeJSONError(w, http.StatusBadRequest, "BAD_USER_INPUT", "single connection mode needs extensions.operationId")
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header
	// The operation outlives this request: its context keeps the request's
	// values (principal, request id) and ends with the stream.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(res.ctx, cancel)
	if with != nil {
		ctx = with(ctx)
	}
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		t.refuse(w, r, errs, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		stop()
		cancel()
		return
	}
	res.mu.Lock()
	switch {
	case res.ops[id] != nil:
		res.mu.Unlock()
		stop()
		cancel()
		writeJSONError(w, http.StatusConflict, "CONFLICT", "an operation with this operationId runs")
		return
	case len(res.ops) >= t.cfg.MaxOperations:
		res.mu.Unlock()
		stop()
		cancel()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{t.cfg.TooMany(ctx)}})
		return
	}
	res.ops[id] = cancel
	res.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	go t.runSingle(ctx, res, id, rc, exec, func() { stop(); cancel() })
}

// runSingle runs an operation of a stream and writes its results there.
func (t *Transport) runSingle(ctx context.Context, res *reservation, id string, rc *graphql.OperationContext, exec graphql.GraphExecutor, done func()) {
	defer done()
	defer func() {
		res.mu.Lock()
		delete(res.ops, id)
		res.mu.Unlock()
	}()
	// Results wait for the stream, if the client has not opened it yet.
	select {
	case <-res.open:
	case <-ctx.Done():
		return
	}
	s := res.stream
	idJSON, _ := json.Marshal(id)
	prefix := append(append([]byte(`event: next`+"\n"+`data: {"id":`), idJSON...), `,"payload":`...)
	responses, ctx := exec.DispatchOperation(ctx, rc)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		payload, err := json.Marshal(resp)
		if err != nil || !s.writeEvent(prefix, payload, []byte("}\n\n")) {
			return
		}
	}
	if ctx.Err() == nil {
		s.writeEvent([]byte(`event: complete`+"\n"+`data: {"id":`), idJSON, []byte("}\n\n"))
	}
}

// writeEvent writes one event under the stream's lock.
func (s *stream) writeEvent(parts ...[]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ka.Reset(s.every)
	return s.write(parts...)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}}})
}
