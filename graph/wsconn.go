package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
)

// The websocket under gqlgen's transport.
//
// gqlgen's websocket transport (both subprotocols, init, keep-alive,
// ping/pong, subscribe and complete) is used as it ships. What it leaves to
// an adapter, transport.WebsocketImplementation, is accepting the connection
// and turning messages into frames; gqlgen's own adapter for coder/websocket
// does that with json.Marshal. This adapter does the same on the same
// library, and in addition:
//
//   - speaks the close codes of the protocols: 1001 ("going away") when the
//     server shuts down, so that clients reconnect and resume, and
//     graphql-transport-ws's 4400/4408 where gqlgen uses 1002;
//   - bounds every socket write with StreamWriteTimeout and coalesces writes
//     (coalescingConn), so a client that stops reading is cut off and a busy
//     one costs one system call per flush rather than per message;
//   - encodes gqlgen's messages without encoding/json, and lets a
//     subscription hand over the bytes of an event shared by many
//     subscribers (see fanout.go) without their being encoded again.
//
// The last point is about fan-out cost. gqlgen encodes each response twice
// (json.Marshal of the response, then of the message around it), and each
// pass re-validates the whole payload: under fan-out that was more than a
// third of the server's CPU. gqlgen's messages are flat structs of strings
// and one json.RawMessage payload that gqlgen itself produced with
// json.Marshal, so writing them field by field gives the same JSON.

// wsImplementation is gqlgen's WebsocketImplementation on coder/websocket.
type wsImplementation struct {
	accept       coderws.AcceptOptions
	hub          *streamHub
	writeTimeout time.Duration
	flushDelay   time.Duration // see coalescingConn; 0 = every message is written at once
}

func (i wsImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for k, vs := range opts.ResponseHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	ao := i.accept
	ao.Subprotocols = slices.Clone(ao.Subprotocols)
	for _, p := range opts.Subprotocols {
		if !slices.Contains(ao.Subprotocols, p) {
			ao.Subprotocols = append(ao.Subprotocols, p)
		}
	}
	hj := &coalescingHijacker{ResponseWriter: w, delay: i.flushDelay, timeout: i.writeTimeout}
	conn, err := coderws.Accept(hj, r, &ao)
	if err != nil {
		return nil, err
	}
	c := &wsConn{conn: conn, out: hj.conn, hub: i.hub, slots: map[uint32]*deferSlot{}}
	if cs, ok := r.Context().Value(connStateKey{}).(*connState); ok {
		cs.ws.Store(c)
	}
	return c, nil
}

// wsConn is one accepted websocket.
type wsConn struct {
	conn *coderws.Conn
	out  *coalescingConn // under conn; for cork and uncork
	hub  *streamHub

	mu           sync.Mutex
	readDeadline *time.Timer
	closing      chan struct{} // the close handshake runs; it owns closing the connection
	slots        map[uint32]*deferSlot
	nextSlot     uint32
}

var (
	_ transport.WebsocketConn          = (*wsConn)(nil)
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)

// Close codes.
const (
	closeGoingAway      = 1001
	closeBadRequest     = 4400 // graphql-transport-ws: invalid message
	closeInitTimeout    = 4408 // graphql-transport-ws: connection initialisation timeout
	transportWSProtocol = "graphql-transport-ws"
)

func (c *wsConn) Subprotocol() string    { return c.conn.Subprotocol() }
func (c *wsConn) SetReadLimit(n int64)   { c.conn.SetReadLimit(n) }
func (c *wsConn) closeHandshaking() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.closing != nil }

// NextReader returns the next message. A normal close by the peer is
// transport.ErrWebsocketClosed, as the transport expects.
func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.conn.Read(context.Background())
	if err != nil {
		switch coderws.CloseStatus(err) {
		case coderws.StatusNormalClosure, coderws.StatusNoStatusRcvd:
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

// directFrames counts the messages writeNext wrote for subscriptions that
// have ended, for tests. Each slot counts its own (direct), so that
// thousands of subscribers do not all write one counter.
var directFrames atomic.Int64

// framePool holds the buffers messages are encoded into; coder copies a
// message out before Write returns.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// WriteJSON writes one of gqlgen's messages.
func (c *wsConn) WriteJSON(v any) error {
	bp := framePool.Get().(*[]byte)
	b, ok := c.appendMessage((*bp)[:0], v)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			framePool.Put(bp)
			return err
		}
	}
	err := c.conn.Write(context.Background(), coderws.MessageText, b)
	if ok && cap(b) <= 64<<10 {
		*bp = b[:0]
	}
	framePool.Put(bp)
	return err
}

// WriteClose starts the close handshake with code and msg, after mapping
// them to the protocol's codes. coder's Close waits up to 5 s for the
// peer's close frame, so it runs in the background, as in gqlgen's adapter.
func (c *wsConn) WriteClose(code int, msg string) error {
	switch {
	case c.hub.isClosing() && code == transport.WebsocketCloseNormalClosure:
		code, msg = closeGoingAway, "server shutting down; reconnect to resume"
	case code == transport.WebsocketCloseProtocolError && c.Subprotocol() == transportWSProtocol:
		if strings.Contains(msg, "timeout") {
			code = closeInitTimeout
		} else {
			code = closeBadRequest
		}
	}
	c.mu.Lock()
	c.stopReadDeadline()
	if c.closing != nil {
		c.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.closing = done
	c.mu.Unlock()
	go func() {
		defer close(done)
		_ = c.conn.Close(coderws.StatusCode(code), msg)
	}()
	return nil
}

// Close closes the connection at once, unless a close handshake is under
// way, which closes it when done.
func (c *wsConn) Close() error {
	c.mu.Lock()
	c.stopReadDeadline()
	c.mu.Unlock()
	if c.closeHandshaking() {
		return nil
	}
	return c.conn.CloseNow()
}

// SetReadDeadline closes the connection at t unless called again first
// (gqlgen's ping/pong: a pong clears it). A zero t clears it.
func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.stopReadDeadline()
	if !t.IsZero() {
		d := time.Until(t)
		if d <= 0 {
			c.mu.Unlock()
			return c.conn.CloseNow()
		}
		c.readDeadline = time.AfterFunc(d, func() { _ = c.conn.CloseNow() })
	}
	c.mu.Unlock()
	return nil
}

func (c *wsConn) stopReadDeadline() {
	if c.readDeadline != nil {
		c.readDeadline.Stop()
		c.readDeadline = nil
	}
}

// Deferred payloads. A subscriber whose event's encoding is shared (fanout.go)
// returns to gqlgen a response whose data is a placeholder, and WriteJSON
// puts the shared bytes in its place. gqlgen encodes the response and the
// message around it as usual, which costs little for a placeholder.
//
// The placeholder is a negative number, -N for the subscription's slot N on
// this connection: GraphQL data is an object or null, never a number, so it
// cannot be mistaken for data. gqlgen hands the response to WriteJSON in the
// same goroutine that returned it, before it asks the subscription for the
// next, so a slot holds at most one payload and needs no lock of its own.

// deferSlot is one subscription's slot. All but n and ph belong to the
// subscription's goroutine.
type deferSlot struct {
	n    uint32
	ph   []byte // the placeholder, -n
	data []byte // set by put, taken by WriteJSON

	// The message gqlgen last sent for the slot, around its data: the
	// template of writeNext.
	prefix, suffix []byte
	direct         atomic.Int64 // messages writeNext wrote
}

// put stashes data and returns the placeholder to send instead.
func (s *deferSlot) put(data []byte) []byte {
	s.data = data
	return s.ph
}

// newSlot gives a subscription a slot; dropSlot takes it back.
func (c *wsConn) newSlot() *deferSlot {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextSlot++
	s := &deferSlot{n: c.nextSlot, ph: strconv.AppendInt(nil, -int64(c.nextSlot), 10)}
	c.slots[s.n] = s
	return s
}

func (c *wsConn) dropSlot(s *deferSlot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.slots, s.n)
	directFrames.Add(s.direct.Load())
}

// dataPrefix is how gqlgen's encoding of a response without errors starts.
const dataPrefix = `{"data":-`

// appendPayload appends p, the payload of a data message, with a
// placeholder for its data replaced by the data. If it was, it returns the
// slot and where in b the data went.
func (c *wsConn) appendPayload(b, p []byte) (_ []byte, _ *deferSlot, from, to int) {
	if !bytes.HasPrefix(p, []byte(dataPrefix)) {
		return append(b, p...), nil, 0, 0
	}
	j := len(dataPrefix)
	k := j
	for k < len(p) && p[k] >= '0' && p[k] <= '9' {
		k++
	}
	n, err := strconv.ParseUint(string(p[j:k]), 10, 32)
	if err != nil || k == len(p) || (p[k] != '}' && p[k] != ',') {
		return append(b, p...), nil, 0, 0
	}
	c.mu.Lock()
	s := c.slots[uint32(n)]
	c.mu.Unlock()
	if s == nil || s.data == nil {
		return append(b, p...), nil, 0, 0
	}
	data := s.data
	s.data = nil
	b = append(b, `{"data":`...)
	from = len(b)
	b = append(b, data...)
	to = len(b)
	return append(b, p[k:]...), s, from, to
}

// writeNext writes a data message for data: the message gqlgen last sent
// for the slot with data in place of its data. Once gqlgen has sent one, a
// subscription whose events have shared encodings sends the following ones
// this way (fanout.go); gqlgen's transport sends everything else as usual,
// including the end of the subscription, which comes after the last of
// these in the same goroutine. gqlgen's messages for a subscription differ
// only in their data (the responses carry no errors or extensions: they
// stand for shared encodings), so the bytes are those gqlgen would have
// sent. It also frames the message itself, between coder's frames
// (coalescingConn.writeText): coder's writer takes two locks, each a
// select, per message, which under fan-out was about a sixth of the
// server's CPU.
func (c *wsConn) writeNext(s *deferSlot, data []byte) error {
	s.direct.Add(1)
	return c.out.writeText(s.prefix, data, s.suffix)
}

// Message encoding. gqlgen's message types are unexported structs; what
// WriteJSON relies on is their shape, found by reflection once per type:
// exported fields that are strings or json.RawMessage, with json tags. A
// type of any other shape is left to json.Marshal.

type msgField struct {
	index     int
	key       string // `"name":`
	raw       bool   // json.RawMessage, else a string kind
	omitEmpty bool
}

var (
	msgPlans   sync.Map // reflect.Type → []msgField, or nil if the type is not flat
	rawMsgType = reflect.TypeFor[json.RawMessage]()
)

func planFor(t reflect.Type) []msgField {
	if p, ok := msgPlans.Load(t); ok {
		return p.([]msgField)
	}
	var plan []msgField
	flat := t.Kind() == reflect.Struct
	for i := 0; flat && i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue // gqlgen's noOp: not encoded by json.Marshal either
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !safeJSONString(name):
			flat = false
			continue
		case name == "":
			name = f.Name
		}
		mf := msgField{index: i, key: `"` + name + `":`, omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty")}
		switch {
		case f.Type == rawMsgType:
			mf.raw = true
		case f.Type.Kind() == reflect.String && !reflect.PointerTo(f.Type).Implements(reflect.TypeFor[json.Marshaler]()):
			// gqlgen's message types implement encoding.TextMarshaler
			// by returning the string itself; json.Marshal writes the
			// same for a plain string.
		default:
			flat = false
		}
		plan = append(plan, mf)
	}
	if !flat {
		plan = nil
	}
	msgPlans.Store(t, plan)
	return plan
}

// appendMessage appends the JSON of v, a pointer to one of gqlgen's
// messages, and reports false if it cannot, leaving that to json.Marshal.
func (c *wsConn) appendMessage(b []byte, v any) ([]byte, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return b, false
	}
	rv = rv.Elem()
	plan := planFor(rv.Type())
	if plan == nil {
		return b, false
	}
	// Only data messages carry placeholders: a client's ping payload is
	// echoed as it came.
	data := false
	for _, f := range plan {
		if !f.raw && f.key == `"type":` {
			t := rv.Field(f.index).String()
			data = t == "next" || t == "data"
		}
	}
	start := len(b)
	b = append(b, '{')
	first := true
	var slot *deferSlot // whose data went in, at b[from:to]
	var from, to int
	for _, f := range plan {
		fv := rv.Field(f.index)
		if f.raw {
			p := fv.Bytes()
			if len(p) == 0 {
				if f.omitEmpty {
					continue
				}
				p = []byte("null")
			}
			if !first {
				b = append(b, ',')
			}
			b = append(b, f.key...)
			if data {
				b, slot, from, to = c.appendPayload(b, p)
			} else {
				b = append(b, p...)
			}
		} else {
			s := fv.String()
			if s == "" && f.omitEmpty {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			b = append(b, f.key...)
			b = appendJSONString(b, s)
		}
		first = false
	}
	b = append(b, '}')
	if slot != nil {
		slot.prefix = append(slot.prefix[:0], b[start:from]...)
		slot.suffix = append(slot.suffix[:0], b[to:]...)
	}
	return b, true
}

// appendJSONString appends s as a JSON string, escaped as json.Marshal
// escapes it. A message is never left to json.Marshal for its strings: the
// placeholder in its payload is already replaced by then.
func appendJSONString(b []byte, s string) []byte {
	if safeJSONString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// safeJSONString reports whether s needs no escaping in JSON, as
// json.Marshal escapes (which includes <, > and &).
func safeJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
