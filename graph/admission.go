package graph

import (
	"context"
	"net/http"

	"golang.org/x/sync/semaphore"
)

// Admission of the requests whose memory grows with their data rather than
// with their document, so that concurrent ones queue instead of multiplying
// the server's peak (cmd/abusebench: eight clients sending 8 MiB bodies and
// stream verifications took RSS from 313 to 845 MiB).
//
//   - Bodies over largeBody bytes share a budget of twice MaxBodyBytes: a
//     body costs about six times its size to read and decode (the buffer,
//     the JSON decoder's buffer, the decoded strings), and at most two
//     bodies of the limit are in flight. Smaller bodies, nearly every
//     request, never wait. The budget covers the bodies of plain POSTs and
//     SSE POSTs, and websocket messages from the moment they pass largeBody
//     bytes until they are decoded (websocket.go).
//   - Stream.verify reads a whole stream from the store (hundreds of MiB
//     for a long one on FerretDB): one at a time per process.
const largeBody = 1 << 20

// admitBody waits for r's share of the body budget and returns its release;
// ok is false when the client gave up first.
func (e *Endpoint) admitBody(r *http.Request) (release func(), ok bool) {
	n := r.ContentLength
	if n < 0 || n > e.cfg.MaxBodyBytes {
		n = e.cfg.MaxBodyBytes // chunked: the most it can be; over the limit: refused after admission
	}
	return e.admitBytes(r.Context(), n)
}

func (e *Endpoint) admitBytes(ctx context.Context, n int64) (release func(), ok bool) {
	if n <= largeBody {
		return func() {}, true
	}
	if err := e.bodies.Acquire(ctx, n); err != nil {
		return nil, false
	}
	return func() { e.bodies.Release(n) }, true
}

// acquireVerify takes the process's verification slot; it returns ctx's
// error if ctx ends first. A nil slot (a Resolver outside an Endpoint)
// admits everything.
func acquireVerify(ctx context.Context, slot *semaphore.Weighted) (release func(), err error) {
	if slot == nil {
		return func() {}, nil
	}
	if err := slot.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	return func() { slot.Release(1) }, nil
}
