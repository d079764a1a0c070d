package wstransport

import (
	"encoding/binary"
	"encoding/json"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Writing. Every message is framed into the connection's buffer under mu and
// flushed in one write, unless the operation that wrote it has more ready at
// once (ReportBacklog): then the buffer waits for them, up to maxPending
// bytes. The buffer comes from a pool and goes back once flushed, so a
// connection between writes holds none.

const maxPending = 8 << 10

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func putOut(b *[]byte) {
	if cap(*b) <= 4*maxPending {
		*b = (*b)[:0]
		outPool.Put(b)
	}
}

// appendFrame appends one unmasked, final frame whose payload is the
// concatenation of parts. Under mu.
func (c *conn) appendFrame(op ws.OpCode, parts ...[]byte) {
	if c.out == nil {
		c.out = outPool.Get().(*[]byte)
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := *c.out
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	for _, p := range parts {
		b = append(b, p...)
	}
	c.t.held.Add(int64(len(b) - len(*c.out)))
	*c.out = b
}

// appendText appends a text message. Under mu.
func (c *conn) appendText(parts ...[]byte) { c.appendFrame(ws.OpText, parts...) }

// flushLocked writes the buffer. A write that fails (the peer went away, or
// did not read for WriteTimeout) drops the connection. The deadline moves
// only when less than half of WriteTimeout is left, so that a busy connection
// does not set it for every write; a blocked write fails after between half
// and all of WriteTimeout.
func (c *conn) flushLocked() error {
	if c.broken {
		return errStopped
	}
	if c.out == nil {
		return nil
	}
	if !c.hurry.Load() {
		now := time.Now()
		if c.deadline.Sub(now) < c.t.cfg.WriteTimeout/2 {
			c.deadline = now.Add(c.t.cfg.WriteTimeout)
			_ = c.nc.SetWriteDeadline(c.deadline)
		}
	}
	_, err := c.nc.Write(*c.out)
	c.t.held.Add(-int64(len(*c.out)))
	putOut(c.out)
	c.out = nil
	if err != nil {
		c.fail()
		return errStopped
	}
	return nil
}

// pending is how many bytes wait in the buffer. Under mu.
func (c *conn) pending() int {
	if c.out == nil {
		return 0
	}
	return len(*c.out)
}

// appendJSONString appends s as a JSON string, escaped as json.Marshal
// escapes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
