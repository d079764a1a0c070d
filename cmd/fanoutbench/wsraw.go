package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The subscribers' side of the websocket.
//
// The bench runs on the machine the server runs on, so every cycle its
// subscribers spend is taken from the server it measures. Reading each
// message through github.com/coder/websocket cost the bench about as much
// CPU as the server spent sending it (two channel-based locks and a select
// per message, for 500,000 messages a second at 5,000 subscribers), so the
// subscribers read frames themselves: this is the least a client can do,
// and it is only a client, only for text messages the server sends
// unfragmented or fragmented, pings, pongs and close. The handshake is
// net/http's: a 101 response's body is the connection.

// rawConn is one client websocket.
type rawConn struct {
	rwc io.ReadWriteCloser
	br  *bufio.Reader

	wmu  sync.Mutex
	wbuf []byte
}

var upgradeTransport = &http.Transport{
	DialContext:       (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	DisableKeepAlives: true,
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dialRaw opens a websocket to url (ws://) with the subprotocol. ctx bounds
// the handshake only.
func dialRaw(ctx context.Context, url, proto string) (*rawConn, error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req, err := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Protocol", proto)
	// The request's context would end the connection with it, so the
	// handshake's deadline is enforced here instead.
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := upgradeTransport.RoundTrip(req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	resp := r.resp
	sum := sha1.Sum([]byte(key + wsGUID))
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		resp.Body.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		resp.Body.Close()
		return nil, errors.New("websocket handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != proto:
		resp.Body.Close()
		return nil, fmt.Errorf("server chose subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("websocket handshake: the response body is not the connection")
	}
	return &rawConn{rwc: rwc, br: bufio.NewReaderSize(rwc, 4096)}, nil
}

// Opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// next reads the next text message, appending it to buf. It answers pings,
// skips pongs and returns io.EOF when the server closes.
func (c *rawConn) next(buf []byte) ([]byte, error) {
	start := len(buf)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return buf, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		if hdr[1]&0x80 != 0 {
			return buf, errors.New("the server masked a frame")
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				return buf, err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				return buf, err
			}
			n = binary.BigEndian.Uint64(hdr[:8])
		}
		if n > 16<<20 {
			return buf, fmt.Errorf("a frame of %d bytes", n)
		}
		at := len(buf)
		buf = append(buf, make([]byte, n)...)[:at+int(n)]
		if _, err := io.ReadFull(c.br, buf[at:]); err != nil {
			return buf, err
		}
		switch op {
		case opText, opContinuation:
			if fin {
				return buf, nil
			}
		case opClose:
			return buf[:start], io.EOF
		case opPing:
			payload := append([]byte(nil), buf[at:]...)
			buf = buf[:at]
			if err := c.write(opPong, payload); err != nil {
				return buf, err
			}
		case opPong:
			buf = buf[:at]
		default:
			return buf, fmt.Errorf("unexpected opcode %d", op)
		}
	}
}

// writeText sends one text message.
func (c *rawConn) writeText(p []byte) error { return c.write(opText, p) }

// write sends one frame, masked as a client must.
func (c *rawConn) write(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, x := range p {
		b = append(b, x^mask[i&3])
	}
	c.wbuf = b
	_, err := c.rwc.Write(b)
	return err
}

// close sends a close frame (normal closure) and closes the connection.
func (c *rawConn) close() {
	_ = c.write(opClose, []byte{0x03, 0xe8})
	_ = c.rwc.Close()
}
