package graph_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/hindsight-dev/hindsight/graph"
)

// The websocket conformance table: raw frames in, exact messages and close
// codes out, for every message type and close code of both subprotocols
// (graphql-ws's PROTOCOL.md for graphql-transport-ws, subscriptions-transport-
// ws's for the legacy graphql-ws) and the RFC 6455 failures beneath them.

// rawWS is a websocket client that writes and reads frames itself, so that
// it can send what a well-behaved library would refuse to.
type rawWS struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, serverURL, proto string) *rawWS {
	t.Helper()
	nc, host := dialTCP(t, serverURL, "")
	return dialRawOn(t, nc, host, proto)
}

// dialRawOn performs the websocket handshake on nc.
func dialRawOn(t *testing.T, nc net.Conn, host, proto string) *rawWS {
	t.Helper()
	status, br, resp := handshake(t, nc, host, proto)
	if status != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != proto {
		t.Fatalf("handshake: %d, protocol %q", status, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return &rawWS{t: t, nc: nc, br: br}
}

// dialTCP connects to the test server, from the loopback address ip if it is
// not empty (every 127.0.0.x reaches a server on 127.0.0.1).
func dialTCP(t *testing.T, serverURL, ip string) (net.Conn, string) {
	t.Helper()
	host := strings.TrimPrefix(serverURL, "http://")
	var d net.Dialer
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	nc, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, host
}

// handshake sends a websocket upgrade request for proto on nc and reads the
// answer.
func handshake(t *testing.T, nc net.Conn, host, proto string) (int, *bufio.Reader, *http.Response) {
	t.Helper()
	fmt.Fprintf(nc, "GET /graphql HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n", host, proto)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, br, resp
}

func (c *rawWS) write(f ws.Frame) {
	c.t.Helper()
	if err := ws.WriteFrame(c.nc, f); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, skipping keep-alives ("ka").
func (c *rawWS) read() (ws.Frame, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := ws.ReadFrame(c.br)
		if err != nil || f.Header.OpCode != ws.OpText || string(f.Payload) != `{"type":"ka"}` {
			return f, err
		}
	}
}

// step is one line of a conformance case.
type step struct {
	send   string    // a text message, masked
	frame  *ws.Frame // or a frame as it is (masked if Masked is set)
	expect string    // the next message, exactly (JSON compared after decoding)
	match  string    // or the next message's type, and its payload must contain this
	closed int       // or a close frame with this code, and the end of the socket
}

func text(s string) step          { return step{send: s} }
func expect(s string) step        { return step{expect: s} }
func closed(code int) step        { return step{closed: code} }
func frame(f ws.Frame) step       { return step{frame: &f} }
func like(typ, part string) step  { return step{match: typ + "\x00" + part} }
func masked(f ws.Frame) *ws.Frame { f = ws.MaskFrame(f); return &f }

const (
	initMsg     = `{"type":"connection_init"}`
	ack         = `{"type":"connection_ack"}`
	liveSub     = `{"query":"subscription { events { position } }"}`
	pingBarrier = `{"type":"ping","payload":{"n":1}}`
	pongBarrier = `{"type":"pong","payload":{"n":1}}`
)

func TestWebsocketConformance(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) {
		c.InitTimeout = 300 * time.Millisecond
		c.MaxBodyBytes = 4096
		c.MaxSubscriptionsPerConn = 2
	})
	sub := func(id, payload string) string {
		return `{"id":"` + id + `","type":"subscribe","payload":` + payload + `}`
	}
	start := func(id, payload string) string {
		return `{"id":"` + id + `","type":"start","payload":` + payload + `}`
	}
	query := `{"query":"{ headPosition }"}`
	headData := func(id, typ string) string {
		return fmt.Sprintf(`{"id":%q,"type":%q,"payload":{"data":{"headPosition":"0"}}}`, id, typ)
	}
	big := `{"type":"connection_init","payload":{"x":"` + strings.Repeat("a", 5000) + `"}}`
	cases := []struct {
		proto string
		name  string
		steps []step
	}{
		// graphql-transport-ws
		{protoTransportWS, "init and ack", []step{text(initMsg), expect(ack), text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "init payload object", []step{text(`{"type":"connection_init","payload":{"a":1}}`), expect(ack)}},
		{protoTransportWS, "init payload not an object: 4400", []step{text(`{"type":"connection_init","payload":"x"}`), closed(4400)}},
		{protoTransportWS, "second init: 4429", []step{text(initMsg), expect(ack), text(initMsg), closed(4429)}},
		{protoTransportWS, "init timeout: 4408", []step{closed(4408)}},
		{protoTransportWS, "ping before init: pong", []step{text(`{"type":"ping"}`), expect(`{"type":"pong"}`)}},
		{protoTransportWS, "ping payload echoed", []step{text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "ping payload not an object: 4400", []step{text(`{"type":"ping","payload":[1]}`), closed(4400)}},
		{protoTransportWS, "pong from the client: nothing", []step{text(`{"type":"pong"}`), text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "invalid JSON: 4400", []step{text(`{"type":`), closed(4400)}},
		{protoTransportWS, "not a message object: 4400", []step{text(`[1,2]`), closed(4400)}},
		{protoTransportWS, "id of the wrong type: 4400", []step{text(initMsg), expect(ack), text(`{"id":1,"type":"subscribe","payload":` + query + `}`), closed(4400)}},
		{protoTransportWS, "unknown type: 4400", []step{text(`{"type":"start"}`), closed(4400)}},
		{protoTransportWS, "server-side type from the client: 4400", []step{text(initMsg), expect(ack), text(`{"id":"1","type":"next","payload":{}}`), closed(4400)}},
		{protoTransportWS, "subscribe before ack: 4401", []step{text(sub("1", query)), closed(4401)}},
		{protoTransportWS, "subscribe without id: 4400", []step{text(initMsg), expect(ack), text(`{"type":"subscribe","payload":` + query + `}`), closed(4400)}},
		{protoTransportWS, "subscribe with empty id: 4400", []step{text(initMsg), expect(ack), text(sub("", query)), closed(4400)}},
		{protoTransportWS, "subscribe without query: 4400", []step{text(initMsg), expect(ack), text(sub("1", `{"variables":{}}`)), closed(4400)}},
		{protoTransportWS, "subscribe with variables not an object: 4400", []step{text(initMsg), expect(ack), text(sub("1", `{"query":"{ headPosition }","variables":[1]}`)), closed(4400)}},
		{protoTransportWS, "query: next and complete", []step{text(initMsg), expect(ack), text(sub("q", query)),
			expect(headData("q", "next")), expect(`{"id":"q","type":"complete"}`)}},
		{protoTransportWS, "escaped id", []step{text(initMsg), expect(ack), text(sub(`a\"<b>`, query)),
			expect(headData(`a"<b>`, "next")), expect(`{"id":"a\"<b>","type":"complete"}`)}},
		{protoTransportWS, "validation error: error, no complete", []step{text(initMsg), expect(ack), text(sub("v", `{"query":"{ nope }"}`)),
			like("error", "GRAPHQL_VALIDATION_FAILED"), text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "duplicate id: 4409", []step{text(initMsg), expect(ack), text(sub("d", liveSub)), text(sub("d", liveSub)), closed(4409)}},
		{protoTransportWS, "complete: nothing more, id free again", []step{text(initMsg), expect(ack), text(sub("c", liveSub)),
			text(`{"id":"c","type":"complete"}`), text(pingBarrier), expect(pongBarrier), text(sub("c", query)),
			expect(headData("c", "next")), expect(`{"id":"c","type":"complete"}`)}},
		{protoTransportWS, "complete of an unknown id: nothing", []step{text(initMsg), expect(ack), text(`{"id":"zz","type":"complete"}`), text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "complete without id: 4400", []step{text(initMsg), expect(ack), text(`{"type":"complete"}`), closed(4400)}},
		{protoTransportWS, "too many subscriptions: error", []step{text(initMsg), expect(ack), text(sub("1", liveSub)), text(sub("2", liveSub)),
			text(sub("3", liveSub)), like("error", "TOO_MANY_SUBSCRIPTIONS"), text(pingBarrier), expect(pongBarrier)}},
		{protoTransportWS, "fast subscribe/complete pairs: never too many", fastPairs(sub, `{"id":"%d","type":"complete"}`, 200)},
		{protoTransportWS, "lone surrogate escape: 4400", []step{text(`{"type":"connection_init","payload":{"a":"\ud800"}}`), closed(4400)}},
		{protoTransportWS, "invalid UTF-8: 1007", []step{frame(ws.NewTextFrame([]byte("{\"type\":\"\xff\"}"))), closed(1007)}},
		{protoTransportWS, "binary message: 1003", []step{frame(ws.NewBinaryFrame([]byte(initMsg))), closed(1003)}},
		{protoTransportWS, "message over the limit: 1009", []step{text(big), closed(1009)}},
		{protoTransportWS, "fragmented message", []step{frame(ws.NewFrame(ws.OpText, false, []byte(`{"type":"conn`))),
			frame(ws.NewFrame(ws.OpContinuation, true, []byte(`ection_init"}`))), expect(ack)}},
		{protoTransportWS, "continuation without start: 1002", []step{frame(ws.NewFrame(ws.OpContinuation, true, []byte(`x`))), closed(1002)}},
		{protoTransportWS, "unmasked frame: 1002", []step{{frame: &ws.Frame{Header: ws.Header{Fin: true, OpCode: ws.OpText, Length: 2}, Payload: []byte("{}")}}, closed(1002)}},
		{protoTransportWS, "reserved opcode: 1002", []step{frame(ws.NewFrame(ws.OpCode(3), true, []byte("x"))), closed(1002)}},
		{protoTransportWS, "client close 1000: echoed", []step{frame(ws.NewCloseFrame(ws.NewCloseFrameBody(1000, "bye"))), closed(1000)}},
		{protoTransportWS, "client close with invalid code: 1002", []step{frame(ws.NewCloseFrame(ws.NewCloseFrameBody(1005, ""))), closed(1002)}},

		// graphql-ws (legacy)
		{protoGraphQLWS, "init: ack and ka", []step{text(initMsg), expect(ack)}}, // ka is skipped by read
		{protoGraphQLWS, "second init: connection_error", []step{text(initMsg), expect(ack), text(initMsg), like("connection_error", "already")}},
		{protoGraphQLWS, "init timeout: 4408", []step{closed(4408)}},
		{protoGraphQLWS, "invalid JSON: connection_error, stays open", []step{text(`{"type":`), like("connection_error", "Invalid message"),
			text(initMsg), expect(ack)}},
		{protoGraphQLWS, "lone surrogate escape: connection_error", []step{text(`{"type":"connection_init","payload":{"a":"\ud800"}}`),
			like("connection_error", "Invalid message"), text(initMsg), expect(ack)}},
		{protoGraphQLWS, "unknown type: error", []step{text(initMsg), expect(ack), text(`{"id":"u","type":"subscribe"}`), like("error", "invalid message type")}},
		{protoGraphQLWS, "start before init: connection_error and 4401", []step{text(start("1", query)), like("connection_error", "connection_init"), closed(4401)}},
		{protoGraphQLWS, "start without id: connection_error", []step{text(initMsg), expect(ack), text(`{"type":"start","payload":` + query + `}`), like("connection_error", "id")}},
		{protoGraphQLWS, "start without query: error", []step{text(initMsg), expect(ack), text(start("1", `{}`)), like("error", "query")}},
		{protoGraphQLWS, "query: data and complete", []step{text(initMsg), expect(ack), text(start("q", query)),
			expect(headData("q", "data")), expect(`{"id":"q","type":"complete"}`)}},
		{protoGraphQLWS, "validation error: error", []step{text(initMsg), expect(ack), text(start("v", `{"query":"{ nope }"}`)),
			like("error", "GRAPHQL_VALIDATION_FAILED")}},
		{protoGraphQLWS, "stop: complete", []step{text(initMsg), expect(ack), text(start("s", liveSub)), text(`{"id":"s","type":"stop"}`),
			expect(`{"id":"s","type":"complete"}`)}},
		{protoGraphQLWS, "start with a running id replaces it", []step{text(initMsg), expect(ack), text(start("r", liveSub)), text(start("r", liveSub)),
			text(`{"id":"r","type":"stop"}`), expect(`{"id":"r","type":"complete"}`), text(`{"id":"b","type":"barrier"}`), like("error", "invalid message type")}},
		{protoGraphQLWS, "too many subscriptions: error", []step{text(initMsg), expect(ack), text(start("1", liveSub)), text(start("2", liveSub)),
			text(start("3", liveSub)), like("error", "TOO_MANY_SUBSCRIPTIONS")}},
		{protoGraphQLWS, "fast start/stop pairs: never too many", fastPairs(start, `{"id":"%d","type":"stop"}`, 200)},
		{protoGraphQLWS, "connection_terminate: 1000", []step{text(initMsg), expect(ack), text(`{"type":"connection_terminate"}`), closed(1000)}},
		{protoGraphQLWS, "invalid UTF-8: 1007", []step{frame(ws.NewTextFrame([]byte("{\"type\":\"\xff\"}"))), closed(1007)}},
		{protoGraphQLWS, "binary message: 1003", []step{frame(ws.NewBinaryFrame([]byte(initMsg))), closed(1003)}},
		{protoGraphQLWS, "message over the limit: 1009", []step{text(big), closed(1009)}},
	}
	for _, tc := range cases {
		t.Run(tc.proto+"/"+tc.name, func(t *testing.T) {
			c := dialRaw(t, h.srv.URL, tc.proto)
			for i, s := range tc.steps {
				c.run(i, s)
			}
		})
	}
}

// fastPairs subscribes and completes n times in a row without waiting, on a
// connection that allows 2 subscriptions: each id is free as soon as its
// complete is read, so none is refused.
func fastPairs(sub func(id, payload string) string, stop string, n int) []step {
	steps := []step{text(initMsg), expect(ack)}
	for i := 0; i < n; i++ {
		steps = append(steps, text(sub(fmt.Sprint(i), liveSub)), text(fmt.Sprintf(stop, i)))
	}
	if strings.Contains(stop, "stop") {
		for i := 0; i < n; i++ {
			steps = append(steps, expect(fmt.Sprintf(`{"id":"%d","type":"complete"}`, i)))
		}
		return steps
	}
	return append(steps, text(pingBarrier), expect(pongBarrier))
}

func (c *rawWS) run(i int, s step) {
	t := c.t
	t.Helper()
	switch {
	case s.send != "":
		c.write(ws.MaskFrame(ws.NewTextFrame([]byte(s.send))))
	case s.frame != nil:
		f := *s.frame
		if f.Header.OpCode != ws.OpText || f.Header.Length != 2 || string(f.Payload) != "{}" {
			f = ws.MaskFrame(f) // all but the deliberately unmasked one
		}
		c.write(f)
	case s.closed != 0:
		f, err := c.read()
		if err != nil {
			t.Fatalf("step %d: want close %d, got %v", i, s.closed, err)
		}
		if f.Header.OpCode != ws.OpClose {
			t.Fatalf("step %d: want close %d, got %s", i, s.closed, f.Payload)
		}
		code, reason := ws.ParseCloseFrameData(f.Payload)
		if int(code) != s.closed {
			t.Fatalf("step %d: close %d %q, want %d", i, code, reason, s.closed)
		}
		// The server ends the TCP connection after its close frame.
		if _, err := c.read(); err == nil {
			t.Fatalf("step %d: a frame after the close frame", i)
		}
	default:
		f, err := c.read()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if f.Header.OpCode != ws.OpText {
			code, reason := ws.ParseCloseFrameData(f.Payload)
			t.Fatalf("step %d: got opcode %d (close %d %q), want a message", i, f.Header.OpCode, code, reason)
		}
		if s.expect != "" {
			var got, want any
			if json.Unmarshal(f.Payload, &got) != nil || json.Unmarshal([]byte(s.expect), &want) != nil ||
				fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: got %s, want %s", i, f.Payload, s.expect)
			}
			return
		}
		typ, part, _ := strings.Cut(s.match, "\x00")
		var m struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(f.Payload, &m); err != nil || m.Type != typ || !strings.Contains(string(m.Payload), part) {
			t.Fatalf("step %d: got %s, want %s with %q", i, f.Payload, typ, part)
		}
	}
}

// TestWebsocketKeepAlive: after connection_ack, graphql-ws (legacy) gets "ka"
// and graphql-transport-ws gets "ping" every KeepAlive; a graphql-transport-ws
// client that answers nothing for two pings is closed with 1001, one that
// answers stays.
func TestWebsocketKeepAlive(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.KeepAlive = 100 * time.Millisecond })
	next := func(c *rawWS) ws.Frame {
		t.Helper()
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := ws.ReadFrame(c.br)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		proto, keepAlive string
		answer           bool
	}{
		{protoGraphQLWS, `{"type":"ka"}`, false},
		{protoTransportWS, `{"type":"ping"}`, true},
		{protoTransportWS, `{"type":"ping"}`, false},
	} {
		c := dialRaw(t, h.srv.URL, tc.proto)
		c.run(0, text(initMsg))
		if f := next(c); string(f.Payload) != ack {
			t.Fatalf("%s: got %s", tc.proto, f.Payload)
		}
		got := 0
		for got < 4 {
			f := next(c)
			if f.Header.OpCode == ws.OpClose {
				code, reason := ws.ParseCloseFrameData(f.Payload)
				if tc.answer || code != 1001 || got < 2 {
					t.Fatalf("%s (answer %v): closed %d %q after %d keep-alives", tc.proto, tc.answer, code, reason, got)
				}
				break
			}
			if string(f.Payload) != tc.keepAlive {
				t.Fatalf("%s: got %s, want %s", tc.proto, f.Payload, tc.keepAlive)
			}
			got++
			if tc.answer {
				c.run(0, text(`{"type":"pong"}`))
			}
		}
		if !tc.answer && tc.proto == protoTransportWS && got >= 4 {
			t.Fatalf("%s: a client that never answers was not closed after %d pings", tc.proto, got)
		}
	}
}
