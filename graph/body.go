package graph

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/hindsight-dev/hindsight/internal/jsonvalue"
)

// jsonBody accepts only Content-Type: application/json. That is also the
// CSRF defence of POST: a browser sends a cross-origin POST without a
// preflight only with text/plain, application/x-www-form-urlencoded or
// multipart/form-data, and those are refused here, so a page of another
// origin can never make a visitor's browser run a mutation.
func (e *Endpoint) jsonBody(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		e.refuse(w, r, http.StatusUnsupportedMediaType, CodeBadUserInput, "NOT_JSON", "send the request as Content-Type: application/json")
		return false
	}
	return true
}

// singleOperation refuses array batching (a JSON array of operations), which
// multiplies what one request may cost past every per-operation limit. It
// looks at the first byte that is not white space of the body readBody read.
func (e *Endpoint) singleOperation(w http.ResponseWriter, r *http.Request) bool {
	if rb, ok := r.Body.(readBytes); ok && firstByte(rb.b) == '[' {
		e.refuse(w, r, http.StatusBadRequest, CodeBadUserInput, "BATCH", "batched operations are not supported; send one operation per request")
		return false
	}
	return true
}

// readBytes is a request body that readBody read whole: handlers read it as
// usual, and httpTransport takes the bytes without another copy.
type readBytes struct {
	*bytes.Reader
	b []byte
}

func (readBytes) Close() error { return nil }

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
		e.refuse(w, r, http.StatusRequestEntityTooLarge, CodeBadUserInput, "BODY_TOO_LARGE", e.tooLargeMessage())
		return false
	}
	buf := new(bytes.Buffer)
	if r.ContentLength > 0 {
		need := int(r.ContentLength) + bytes.MinRead // room to see EOF without growing
		buf = bytes.NewBuffer(e.bodyBufs.get(need))  // nil when no kept buffer fits
		buf.Grow(need)
	}
	ok := false
	defer func() {
		if !ok {
			e.keepBody(buf.Bytes()) // refused: nothing views the body
		}
	}()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, e.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			e.refuse(w, r, http.StatusRequestEntityTooLarge, CodeBadUserInput, "BODY_TOO_LARGE", e.tooLargeMessage())
			return false
		}
		e.refuse(w, r, http.StatusBadRequest, CodeBadUserInput, "BODY_UNREADABLE", "the request body could not be read")
		return false
	}
	if jsonDepth(buf.Bytes()) > MaxJSONDepth {
		e.refuse(w, r, http.StatusBadRequest, CodeBadUserInput, "JSON_DEPTH", fmt.Sprintf("the request body is JSON nested deeper than %d levels", MaxJSONDepth))
		return false
	}
	if err := CheckJSONText(buf.Bytes()); err != nil {
		e.refuse(w, r, http.StatusBadRequest, CodeBadUserInput, "NOT_TEXT", "the request body is "+err.Error()+"; nothing was written")
		return false
	}
	r.Body = readBytes{bytes.NewReader(buf.Bytes()), buf.Bytes()}
	ok = true
	return true
}

// releaseBody gives the buffer readBody read body into to the next large
// body, once the request has ended: its handler has returned, so nothing
// reads the body any more (the values that outlive it are copies, see
// viewFields). A body that is not readBody's is left alone.
func (e *Endpoint) releaseBody(body io.ReadCloser) {
	if rb, ok := body.(readBytes); ok {
		e.keepBody(rb.b)
	}
}

// keepBody keeps b's buffer for a later body unless it is well over what a
// body at the limit needs (a chunked body grows it by doubling; the
// allocator rounds a large one up to its pages).
func (e *Endpoint) keepBody(b []byte) {
	if int64(cap(b)) <= e.cfg.MaxBodyBytes+e.cfg.MaxBodyBytes/8 {
		e.bodyBufs.put(b)
	}
}

// keepBodyBuffers is how many buffers of large bodies bodyBuffers keeps:
// at most 2 × 9/8 × MaxBodyBytes bytes (keepBody) while the server is idle.
const keepBodyBuffers = 2

// bodyBuffers keeps the buffers of the last large bodies (over largeBody)
// for the next ones to be read into: a body at the limits is the largest
// allocation a request makes (an append of 4 MiB read its body into 4 MiB
// of its own, a fifth of what the request allocated; cmd/abusebench). It is
// a bounded free list rather than a sync.Pool, which every garbage
// collection empties, and a request with a large body allocates enough to
// start one.
type bodyBuffers struct {
	mu   sync.Mutex
	free [][]byte
}

// get returns the smallest kept buffer of at least n bytes, empty, or nil.
func (f *bodyBuffers) get(n int) []byte {
	if n <= largeBody {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	best := -1
	for i, b := range f.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(f.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := f.free[best]
	f.free = append(f.free[:best], f.free[best+1:]...)
	return b[:0]
}

// put keeps b for a later body, in place of the smallest kept buffer when
// keepBodyBuffers are kept already.
func (f *bodyBuffers) put(b []byte) {
	if cap(b) <= largeBody {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.free) < keepBodyBuffers {
		f.free = append(f.free, b[:0])
		return
	}
	small := 0
	for i := range f.free {
		if cap(f.free[i]) < cap(f.free[small]) {
			small = i
		}
	}
	if cap(b) > cap(f.free[small]) {
		f.free[small] = b[:0]
	}
}

func (e *Endpoint) tooLargeMessage() string {
	return "the request body is larger than " + strconv.FormatInt(e.cfg.MaxBodyBytes, 10) + " bytes"
}

// MaxJSONDepth is how deeply a request body's JSON may nest. The whole
// request counts, so event data may nest about 60 levels; MongoDB refuses
// documents nested over 100, and Go's decoder over 10,000 with a message
// that only says the JSON is invalid.
const MaxJSONDepth = 64

// jsonDepth returns the deepest nesting of objects and arrays in a JSON text,
// in one pass, without decoding it. Brackets inside strings do not count.
// A string is skipped with bytes.IndexByte from quote to quote (a quote
// after an odd number of backslashes is inside the string): bodies are
// mostly strings, and an 8 MiB one took 4 ms byte by byte, 0.3 ms so.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end := jsonvalue.StringEnd(b, i+1)
			if end < 0 {
				return deepest // unterminated: the decoder reports it
			}
			i = end
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}
