package wstransport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gobwas/ws"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The subprotocols.
const (
	ProtocolTransportWS = "graphql-transport-ws" // graphql-ws's PROTOCOL.md
	ProtocolGraphQLWS   = "graphql-ws"           // legacy, subscriptions-transport-ws
)

// Close codes of both subprotocols. RFC 6455's own (1001, 1002, 1003, 1007,
// 1009) are used for what happens below the GraphQL protocol.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001 // server shutdown or a dead peer: reconnect
	CloseProtocolError   = 1002 // a frame breaks RFC 6455
	CloseUnsupportedData = 1003 // a binary message
	CloseInvalidText     = 1007 // a text message that is not UTF-8
	ClosePolicyViolation = 1008 // a reserved message did not come within MessageTimeout
	CloseTooBig          = 1009 // a message over Config.ReadLimit
	CloseBadRequest      = 4400 // graphql-transport-ws: invalid message
	CloseUnauthorized    = 4401 // subscribe before connection_ack; failed authentication
	CloseForbidden       = 4403 // authentication refused or expired
	CloseInitTimeout     = 4408 // no connection_init in time
	CloseDuplicateID     = 4409 // subscribe with an id that is running
	CloseTooManyInits    = 4429 // a second connection_init
)

// Config configures the transport. Durations and limits must be positive.
type Config struct {
	InitTimeout  time.Duration // connection_init must come within this
	KeepAlive    time.Duration // "ka" (graphql-ws) or ping (graphql-transport-ws) interval
	WriteTimeout time.Duration // one socket write may block this long
	ReadLimit    int64         // bytes of one client message
	// MaxOperations is how many operations may run at once on one
	// connection; one more gets an error message made by TooMany.
	MaxOperations int
	TooMany       func(ctx context.Context) *gqlerror.Error

	// Open admits an upgrade request before the handshake. It returns the
	// connection's context, whose end closes the connection with 1001
	// (going away), and release, called once when the connection has ended.
	// It must detach the context from the request's, which ends when Do
	// returns, right after the handshake. If !ok it has written the refusal.
	Open func(w http.ResponseWriter, r *http.Request) (ctx context.Context, release func(), ok bool)
	// Init authenticates connection_init, with the upgrade request (its
	// headers and address) and the init payload (nil if none). It returns
	// the context the connection's operations run in, and when the
	// credential expires (zero: never): then the connection is closed with
	// 4403. An error closes it at once, with the code of an *InitError,
	// else 4403.
	Init func(ctx context.Context, r *http.Request, payload map[string]any) (context.Context, time.Time, error)
	// Acked, if set, is called once a connection has been acknowledged.
	Acked func(ctx context.Context)
	// Params, if set, decodes the payload of a subscribe or start (the
	// message's own bytes, which the transport never reuses) into the
	// operation's parameters; with, if not nil, adds to the operation's
	// context what it needs of the payload; !ok refuses the payload as one
	// without a query. Nil decodes it with encoding/json.
	Params func(payload []byte) (params *graphql.RawParams, with func(context.Context) context.Context, ok bool)
	// CheckText checks a client's text message before it is decoded (after
	// the UTF-8 check of RFC 6455); an error refuses the message as invalid.
	CheckText func([]byte) error
	// Reserve, if set, admits the memory of a large client message before
	// it is read whole, as the endpoint admits a POST body of unknown
	// length: a message is read up to SmallMessage bytes without it; before
	// more of it is read, Reserve admits n bytes, the most the message can
	// be (its size when the header of its last frame says it, else
	// ReadLimit), and the rest must come within MessageTimeout (zero: no
	// limit), else the connection is closed with 1008. release is called
	// once the message is decoded or dropped. If !ok (ctx ended first) the
	// connection is dropped.
	Reserve        func(ctx context.Context, n int64) (release func(), ok bool)
	SmallMessage   int64
	MessageTimeout time.Duration
	// Admit, if set, admits the checking and decoding of a client message
	// of n bytes, read whole, as the endpoint admits the decoding of a
	// request body (a CPU lane); release is called once the message is
	// decoded. If !ok (ctx ended first) the message is dropped.
	Admit func(ctx context.Context, n int) (release func(), ok bool)

	Log *slog.Logger
}

// InitError refuses a connection_init with a close code and reason.
type InitError struct {
	Code   int    // CloseUnauthorized or CloseForbidden
	Reason string // sent as the close reason; keep it short (≤ 123 bytes)
	Err    error
}

func (e *InitError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *InitError) Unwrap() error { return e.Err }

// Transport is the websocket transport. Its zero value is not usable; see New.
type Transport struct {
	cfg       Config
	held      atomic.Int64 // bytes in connection buffers, not yet written to a socket
	admitting atomic.Int64 // readers waiting in Config.Reserve
}

// Admitting returns how many connections wait for the admission of a large
// message (Config.Reserve) before they read the rest of it.
func (t *Transport) Admitting() int64 { return t.admitting.Load() }

// Held returns how many bytes the transport holds for clients that it has
// not yet written to their sockets (at most about 32 KiB per connection).
func (t *Transport) Held() int64 { return t.held.Load() }

var _ graphql.Transport = (*Transport)(nil)

// New returns a transport with cfg.
func New(cfg Config) *Transport {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CheckText == nil {
		cfg.CheckText = func([]byte) error { return nil }
	}
	return &Transport{cfg: cfg}
}

// Supports reports whether r asks for a websocket.
func (t *Transport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Do performs the handshake and returns; the connection is served by its own
// goroutine, so that net/http's serving goroutine and its buffers go away.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx, release, ok := t.cfg.Open(w, r)
	if !ok {
		return
	}
	up := ws.HTTPUpgrader{
		Header:   w.Header(), // X-Request-Id and the like
		Timeout:  t.cfg.WriteTimeout,
		Protocol: func(p string) bool { return p == ProtocolTransportWS || p == ProtocolGraphQLWS },
	}
	nc, brw, hs, err := up.Upgrade(r, w)
	if err != nil {
		// The upgrader has answered with an HTTP error.
		if nc != nil {
			_ = nc.Close()
		}
		release()
		t.cfg.Log.DebugContext(ctx, "websocket handshake failed", "err", err)
		return
	}
	c := newConn(t, exec, nc, hs.Protocol, ctx, release, r)
	if n := brw.Reader.Buffered(); n > 0 {
		// The client wrote before it saw our answer.
		p, _ := brw.Reader.Peek(n)
		c.pre = append([]byte(nil), p...)
	}
	go c.serve()
}

// ReportBacklog lets the code that produces a websocket operation's responses
// (a response interceptor) say how many further responses are ready without
// waiting: while backlog() > 0 after a response, the transport holds it in the
// connection's buffer so that it leaves with the next, in one write. It is
// called in the goroutine that runs the operation. It reports false if ctx is
// not an operation of this transport.
func ReportBacklog(ctx context.Context, backlog func() int) bool {
	o, ok := ctx.Value(opKey{}).(*operation)
	if ok {
		o.backlog = backlog
	}
	return ok
}

// Emit writes data, the JSON of a response's data, as the next message of the
// websocket operation in ctx, exactly as the transport writes a
// graphql.Response{Data: data} that the operation's response handler returns;
// more says that further responses are ready at once (see ReportBacklog). It
// is for a response interceptor that has several responses ready: writing all
// but the last itself saves a round through gqlgen's executor per response,
// which at 10,000 subscribers was most of the cost of a delivery. It is
// called in the goroutine that runs the operation. ok is false if ctx is not
// an operation of this transport (nothing was written); err is non-nil if the
// operation or the connection has ended.
func Emit(ctx context.Context, data []byte, more bool) (ok bool, err error) {
	o, ok := ctx.Value(opKey{}).(*operation)
	if !ok {
		return false, nil
	}
	return true, o.conn.writeData(o, data, more)
}

type opKey struct{}

// message is a client's message, in either subprotocol.
type message struct {
	ID      *string         `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

var errStopped = errors.New("wstransport: the operation or connection has ended")
