package graph

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Websocket write coalescing.
//
// coder/websocket flushes every message to the socket, so each event sent to
// each subscriber was one write system call: under fan-out (thousands of
// subscribers, 100 events/s) those calls were the largest single cost of the
// server, after gqlgen's execution (see fanout.go). gqlgen's transport and
// coder's Conn are used as they are; the endpoint only hands coder, at the
// hijack, a connection that coalesces writes:
//
//   - a write after a quiet spell (no flush for delay) goes out at once, so a
//     lone message is not delayed;
//   - later writes are held until delay has passed since the previous flush
//     and then go out together, in one system call, from a timer.
//
// So the latency added is at most delay, and a subscriber receiving 100
// events/s costs 1/delay writes per second instead of 100. What is held is
// bounded (maxPending): a writer that finds that much unsent flushes
// itself, and so blocks while the client does not read, as it did before.
// Each flush has a deadline of between half the endpoint's write timeout and
// all of it (see flush); a failed flush fails every later write, which ends
// the connection. Close flushes first, so a close frame is never lost.
//
// Memory per subscriber is part of the fan-out target, so the buffer that
// holds unsent messages is taken from a pool when the first one comes and
// given back once flushed: a connection between flushes holds none. The
// hijack also swaps the 4 KiB write buffer net/http allocates for a small
// one, since the coalescing buffer is the real write buffer. (net/http's
// read buffer stays: the serving goroutine keeps it anyway.)

const (
	maxPending = 32 << 10 // bytes a connection holds unsent before a writer flushes itself
	smallBufio = 512
)

// pendingPool holds the buffers of unsent messages. Buffers that grew past
// maxPending are dropped rather than kept.
var pendingPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// coalescingHijacker makes the websocket library's Hijack return a
// coalescingConn.
type coalescingHijacker struct {
	http.ResponseWriter
	delay, timeout time.Duration
	conn           *coalescingConn // once hijacked
}

func (h *coalescingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := newCoalescingConn(nc, h.delay, h.timeout)
	h.conn = c
	return c, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(c, smallBufio)), nil
}

func (h *coalescingHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// coalescingConn is a net.Conn whose writes are coalesced as described above.
type coalescingConn struct {
	net.Conn
	delay, timeout time.Duration
	timer          *time.Timer // runs flush; armed while something waits

	wmu      sync.Mutex // serializes writes to Conn
	deadline time.Time  // the write deadline set on Conn; under wmu

	corks atomic.Int32 // open corks

	mu       sync.Mutex
	buf      *[]byte // unsent; nil when there is none
	armed    bool
	last     time.Time // when the previous flush started
	err      error     // a flush failed: every later write fails with it
	frames   frameTracker
	boundary *sync.Cond // on mu; signalled when coder's frames reach a boundary
}

func newCoalescingConn(nc net.Conn, delay, timeout time.Duration) *coalescingConn {
	c := &coalescingConn{Conn: nc, delay: delay, timeout: timeout}
	c.boundary = sync.NewCond(&c.mu)
	c.timer = time.AfterFunc(time.Hour, func() { _ = c.flush() })
	c.timer.Stop()
	return c
}

// Write takes bytes from coder/websocket: whole frames or parts of them.
func (c *coalescingConn) Write(p []byte) (int, error) {
	if err := c.hold(len(p), false); err != nil {
		return 0, err
	}
	*c.buf = append(*c.buf, p...)
	if c.frames.advance(p) {
		c.boundary.Broadcast()
	}
	return len(p), c.release()
}

// writeText writes one text message made of parts, framed here rather than
// by coder/websocket (see wsConn.writeNext): the frame goes between two of
// coder's frames, never into one.
func (c *coalescingConn) writeText(parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if err := c.hold(n+10, true); err != nil {
		return err
	}
	if c.frames.closed {
		c.mu.Unlock()
		return net.ErrClosed // coder sent a close frame: nothing may follow
	}
	*c.buf = appendFrameHeader(*c.buf, n)
	for _, p := range parts {
		*c.buf = append(*c.buf, p...)
	}
	return c.release()
}

// hold locks mu for appending n bytes to buf, first sending what is held if
// that would exceed maxPending, and, for a frame of our own (atBoundary),
// waiting until coder's frames are at a boundary. It returns with mu held
// and buf allocated, or with an error and mu released.
func (c *coalescingConn) hold(n int, atBoundary bool) error {
	c.mu.Lock()
	for {
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return err
		}
		if atBoundary && !c.frames.atBoundary() {
			c.boundary.Wait()
			continue
		}
		if c.buf != nil && len(*c.buf)+n > maxPending {
			c.mu.Unlock()
			if err := c.flush(); err != nil {
				return err
			}
			c.mu.Lock()
			continue
		}
		break
	}
	if c.buf == nil {
		c.buf = pendingPool.Get().(*[]byte)
	}
	return nil
}

// release arms the flush of what hold's caller appended and unlocks mu.
func (c *coalescingConn) release() error {
	now := false
	if !c.armed {
		c.armed = true
		wait := c.delay - time.Since(c.last)
		switch {
		case wait > 0:
			c.timer.Reset(wait)
		case c.corks.Load() > 0:
			// More is coming (cork); uncork flushes, and the timer
			// bounds the wait in case it comes late.
			c.timer.Reset(c.delay)
		default:
			now = true
		}
	}
	c.mu.Unlock()
	if now {
		return c.flush()
	}
	return nil
}

// cork tells the connection that more messages follow at once: a write
// after a quiet spell is then held too, until uncork, so that a subscriber
// delivering several ready events sends them in one system call. Each cork
// needs an uncork; while any is open, what is held still goes out within
// delay.
func (c *coalescingConn) cork() { c.corks.Add(1) }

func (c *coalescingConn) uncork() {
	if c.corks.Add(-1) > 0 {
		return
	}
	c.mu.Lock()
	if c.buf == nil || c.err != nil || time.Since(c.last) < c.delay {
		c.mu.Unlock()
		return // nothing held, or the armed timer sends it
	}
	c.timer.Stop()
	c.mu.Unlock()
	_ = c.flush() // a failure is kept in err and fails the next write
}

// frameTracker follows the websocket frames coder/websocket writes (RFC 6455
// section 5.2; a server's frames are not masked) so that writeText knows
// where one ends. coder writes a frame through its buffered writer, so a
// frame may come in several Writes and a Write may end inside a header.
type frameTracker struct {
	hdr    [14]byte
	nh     int   // bytes of a header received so far
	left   int64 // payload bytes of the current frame still to come
	closed bool  // a close frame went through
}

func (t *frameTracker) atBoundary() bool { return t.nh == 0 && t.left == 0 }

// advance consumes p and reports whether it ended at a frame boundary.
func (t *frameTracker) advance(p []byte) bool {
	for len(p) > 0 {
		if t.left > 0 {
			n := min(int64(len(p)), t.left)
			t.left -= n
			p = p[n:]
			continue
		}
		t.hdr[t.nh] = p[0]
		t.nh++
		p = p[1:]
		if t.nh < 2 {
			continue
		}
		size := 2
		switch t.hdr[1] & 0x7f {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if t.hdr[1]&0x80 != 0 {
			size += 4 // masked (a client's frame; not expected here)
		}
		if t.nh < size {
			continue
		}
		switch l := t.hdr[1] & 0x7f; l {
		case 126:
			t.left = int64(binary.BigEndian.Uint16(t.hdr[2:4]))
		case 127:
			t.left = int64(binary.BigEndian.Uint64(t.hdr[2:10]))
		default:
			t.left = int64(l)
		}
		if t.hdr[0]&0x0f == 0x8 {
			t.closed = true
		}
		t.nh = 0
	}
	return t.atBoundary()
}

// appendFrameHeader appends the header of an unmasked, final text frame
// with an n-byte payload.
func appendFrameHeader(b []byte, n int) []byte {
	b = append(b, 0x81) // FIN, text
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// flush writes what is held.
func (c *coalescingConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	b, err := c.buf, c.err
	c.buf = nil
	c.armed = false
	c.last = time.Now()
	c.mu.Unlock()
	if b == nil {
		return err
	}
	if err == nil {
		// Every socket write has a deadline of at least half the
		// timeout ahead. Moving it costs a poller timer update, so it
		// moves only when less than that is left: a flush blocked for
		// between half the timeout and all of it fails.
		if c.last.Add(c.timeout / 2).After(c.deadline) {
			c.deadline = c.last.Add(c.timeout)
			_ = c.Conn.SetWriteDeadline(c.deadline)
		}
		_, err = c.Conn.Write(*b)
	}
	if cap(*b) <= maxPending*2 {
		*b = (*b)[:0]
		pendingPool.Put(b)
	}
	if err != nil {
		c.fail(err)
	}
	return err
}

// fail makes every later write fail with err, and wakes writeText calls
// waiting for a frame boundary that may never come.
func (c *coalescingConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	c.boundary.Broadcast()
}

// Close sends what is held, unless a flush is blocked (the client does not
// read), then closes the connection, which also ends such a flush.
func (c *coalescingConn) Close() error {
	c.timer.Stop()
	if c.wmu.TryLock() {
		c.wmu.Unlock()
		_ = c.flush()
	}
	c.fail(net.ErrClosed)
	return c.Conn.Close()
}
