package wstransport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gobwas/ws"
)

// conn is one websocket. The reading goroutine (serve) owns the fields marked
// "reader"; everything written to the socket goes through mu.
type conn struct {
	t       *Transport
	exec    graphql.GraphExecutor
	nc      net.Conn
	legacy  bool               // graphql-ws rather than graphql-transport-ws
	base    context.Context    // from Config.Open; its end closes with 1001
	ctx     context.Context    // base, then Init's; operations derive from it (reader)
	cancel  context.CancelFunc // ends ctx at the end of the connection
	release func()
	req     *http.Request // the upgrade request, until connection_init (reader)
	pre     []byte        // bytes net/http read past the handshake (reader)
	hdr     [ws.MaxHeaderSize - 2]byte

	unanswered atomic.Int32 // keep-alive pings sent since the client last sent anything
	waiting    atomic.Bool  // the reader waits for a message's admission, not for the peer
	hurry      atomic.Bool  // closing: writes get no more time

	mu       sync.Mutex
	out      *[]byte // unsent bytes, from outPool; nil when empty
	deadline time.Time
	broken   bool // a write failed; nothing more is written
	closing  bool // a close frame was sent (or the socket is dead)
	acked    bool
	inited   bool // connection_init came (even if refused)
	ops      map[string]*operation
	timer    *time.Timer // init timeout, then keep-alive
	stopBase func() bool
	stopAuth func() bool
}

func newConn(t *Transport, exec graphql.GraphExecutor, nc net.Conn, proto string, ctx context.Context, release func(), r *http.Request) *conn {
	c := &conn{t: t, exec: exec, nc: nc, legacy: proto != ProtocolTransportWS, base: ctx, release: release,
		req: r, ops: map[string]*operation{}}
	c.ctx, c.cancel = context.WithCancel(ctx)
	return c
}

// serve reads the connection until it ends, then cleans up.
func (c *conn) serve() {
	defer c.end()
	c.stopBase = context.AfterFunc(c.base, func() {
		c.closeWith(CloseGoingAway, "server shutting down; reconnect to resume")
	})
	c.mu.Lock()
	c.timer = time.AfterFunc(c.t.cfg.InitTimeout, c.tick)
	c.mu.Unlock()
	var msg []byte // the text message being assembled from fragments
	var fragmented, binary bool
	var reserved func() // Config.Reserve's release for msg; nil when not reserved
	defer func() {
		if reserved != nil {
			reserved()
		}
	}()
	for {
		h, err := ws.ReadHeaderBuffer(c, c.hdr[:])
		if err != nil {
			return
		}
		c.unanswered.Store(0)
		state := ws.StateServerSide
		if fragmented {
			state = state.Set(ws.StateFragmented)
		}
		if err := ws.CheckHeader(h, state); err != nil {
			c.closeWith(CloseProtocolError, err.Error())
			return
		}
		have := int64(len(msg)) // of the message this frame belongs to
		if h.OpCode != ws.OpContinuation {
			have = 0
		}
		if h.OpCode.IsControl() {
			have = 0 // control frames are not part of a message
		}
		if h.Length > c.t.cfg.ReadLimit || have+h.Length > c.t.cfg.ReadLimit {
			c.closeWith(CloseTooBig, "message too big")
			return
		}
		if !h.OpCode.IsControl() && reserved == nil && c.t.cfg.Reserve != nil && have+h.Length > c.t.cfg.SmallMessage {
			if reserved = c.reserve(h, have); reserved == nil {
				return // the connection's context ended
			}
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c, p); err != nil {
			if reserved != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.isClosing() {
				c.closeWith(ClosePolicyViolation, "message not received in time")
			}
			return
		}
		ws.Cipher(p, h.Mask, 0)
		if h.OpCode.IsControl() {
			if !c.control(h.OpCode, p) {
				return
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			binary = h.OpCode == ws.OpBinary
			msg = p
		} else {
			msg = append(msg, p...)
		}
		fragmented = !h.Fin
		if fragmented {
			continue
		}
		switch {
		case c.isClosing():
			// the close handshake runs: messages are dropped
		case binary:
			c.closeWith(CloseUnsupportedData, "messages are JSON text")
		case !utf8.Valid(msg):
			c.closeWith(CloseInvalidText, "invalid UTF-8")
		default:
			c.handle(msg)
		}
		msg = nil
		if reserved != nil {
			reserved()
			reserved = nil
			c.clearReadDeadline()
		}
	}
}

// reserve takes Config.Reserve's admission for the rest of a message before
// it is read, as a POST body of unknown length is admitted: h is the header
// of the frame that takes the message past Config.SmallMessage, have the
// bytes of it read before. The admission is for the most the message can
// be: its size if h is its last frame, else ReadLimit. The rest of the
// message must then come within MessageTimeout, so that a client cannot
// hold a share of the budget by sending slowly. nil: the connection's
// context ended first.
func (c *conn) reserve(h ws.Header, have int64) (release func()) {
	n := c.t.cfg.ReadLimit
	if h.Fin {
		n = have + h.Length
	}
	c.waiting.Store(true)
	c.t.admitting.Add(1)
	release, ok := c.t.cfg.Reserve(c.ctx, n)
	c.t.admitting.Add(-1)
	c.waiting.Store(false)
	if !ok {
		return nil
	}
	c.mu.Lock()
	if !c.closing && c.t.cfg.MessageTimeout > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.t.cfg.MessageTimeout))
	}
	c.mu.Unlock()
	return release
}

// clearReadDeadline ends a reserved message's deadline, unless a close
// handshake has set its own (closeWith sets closing under mu before it sets
// the deadline).
func (c *conn) clearReadDeadline() {
	c.mu.Lock()
	if !c.closing {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
}

// Read reads the socket, first what net/http read past the handshake.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.nc.Read(p)
}

// control handles a control frame; false ends the connection.
func (c *conn) control(op ws.OpCode, p []byte) bool {
	switch op {
	case ws.OpPing:
		c.mu.Lock()
		if !c.closing {
			c.appendFrame(ws.OpPong, p)
			_ = c.flushLocked()
		}
		c.mu.Unlock()
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p)
		if len(p) == 1 {
			c.closeWith(CloseProtocolError, "invalid close frame")
			return false
		}
		if len(p) >= 2 {
			if err := ws.CheckCloseFrameData(code, reason); err != nil {
				c.closeWith(CloseProtocolError, err.Error())
				return false
			}
		} else {
			code = CloseNormal
		}
		// The peer ends the connection: answer with its code, as RFC 6455
		// suggests, unless we have already sent ours.
		c.closeWith(int(code), "")
		return false
	}
	return true
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// closeGrace is how long the peer has to answer our close frame, and how
// long a close frame may take to write.
const closeGrace = 2 * time.Second

// closeWith ends every operation, sends a close frame with code and reason
// and half-closes the socket; the reader then waits briefly for the peer's
// close frame. It may be called from any goroutine, more than once.
func (c *conn) closeWith(code int, reason string) {
	c.hurry.Store(true)
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeGrace)) // a blocked flush gives up soon
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.stopOpsLocked()
	if !c.broken {
		reason = truncate(reason, 123) // a control frame carries at most 125 bytes
		c.appendFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
		_ = c.flushLocked()
	}
	c.mu.Unlock()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
}

// end runs when the reader stops: the connection is over.
func (c *conn) end() {
	c.mu.Lock()
	c.closing = true
	c.stopOpsLocked()
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.out != nil {
		c.t.held.Add(-int64(len(*c.out)))
		putOut(c.out)
		c.out = nil
	}
	c.mu.Unlock()
	c.stopBase()
	if c.stopAuth != nil {
		c.stopAuth()
	}
	c.cancel()
	_ = c.nc.Close()
	c.release()
}

// fail drops a connection whose write failed.
func (c *conn) fail() {
	c.broken, c.closing = true, true
	c.stopOpsLocked()
	_ = c.nc.Close() // the reader returns and ends the rest
}

// tick is the connection's timer: before connection_ack it is the init
// timeout; after, the keep-alive.
func (c *conn) tick() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if !c.acked {
		c.mu.Unlock()
		c.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		return
	}
	ka := c.t.cfg.KeepAlive
	if c.legacy {
		c.appendText(kaMessage)
	} else {
		if !c.waiting.Load() && c.unanswered.Add(1) > 2 {
			// Nothing, not even a pong, since two pings (while the reader
			// reads: one that waits for admission has not read the pongs).
			c.mu.Unlock()
			c.closeWith(CloseGoingAway, "keep-alive timeout")
			return
		}
		c.appendText(pingMessage)
	}
	if err := c.flushLocked(); err == nil {
		c.timer.Reset(ka)
	}
	c.mu.Unlock()
}

var (
	kaMessage   = []byte(`{"type":"ka"}`)
	pingMessage = []byte(`{"type":"ping"}`)
	pongMessage = []byte(`{"type":"pong"}`)
	ackMessage  = []byte(`{"type":"connection_ack"}`)
)
