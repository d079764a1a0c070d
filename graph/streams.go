package graph

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// serveSSE handles a subscription (or any operation) over SSE. A POST's
// body is read here, under the server's read timeout; the SSE transport
// (ssetransport) then registers the stream (openStream), which clears the
// connection's deadlines, since a stream lives as long as the client wants.
//
// A POST goes through the same admission as a plain one: a large body waits
// for its share of the body budget, and decoding a heavy one waits for the
// heavy lane (admission.go, lane.go).
func (e *Endpoint) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if !e.jsonBody(w, r) {
			return
		}
		admitted, ok := e.admitBody(r)
		if !ok {
			return // the client is gone
		}
		if !e.readBody(w, r) || !e.singleOperation(w, r) {
			admitted()
			return
		}
		// The body's admission ends once it is decoded, not with the
		// stream, which may live for hours.
		rb, _ := r.Body.(readBytes)
		ctx, release := e.lane.enterBodyLane(r.Context(), len(rb.b), sync.OnceFunc(admitted))
		defer release()
		r = r.WithContext(ctx)
	}
	e.gql.ServeHTTP(w, r)
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
