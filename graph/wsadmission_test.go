package graph_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestWebsocketMessageAdmittedBeforeRead: a websocket message is admitted
// as a POST body of unknown length is. While the body budget is held, a
// message of MaxBodyBytes is read no further than its first MiB (counted
// on the server's side of the socket, through its listener): sent in one
// frame, not one byte of it, since the frame's header says how long it is;
// sent in 256 KiB fragments, exactly the first four. A small message on
// another connection is answered meanwhile, and once the budget is free the
// large one is read and answered exactly.
func TestWebsocketMessageAdmittedBeforeRead(t *testing.T) {
	h := newHarness(t)
	ln := &countingListener{Listener: mustListen(t)}
	mux := http.NewServeMux()
	mux.Handle("/graphql", h.endpoint)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	const frameHeader = 14 // 2 bytes, a 64-bit length, the mask
	for _, tc := range []struct {
		name     string
		proto    string
		fragment int   // 0: the message in one frame
		unread   int64 // bytes the server may read before admission
	}{
		{"one frame, graphql-transport-ws", protoTransportWS, 0, frameHeader},
		{"256 KiB fragments, graphql-ws", protoGraphQLWS, 256 << 10, 4*(256<<10) + 5*frameHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			big := mustDialWS(t, srv.URL, tc.proto)
			sc := ln.last()
			before := sc.read.Load() // the handshake and connection_init
			msg := paddedSubscribe(tc.proto, "big", cheapQuery, nil, graph.DefaultMaxBodyBytes)

			hold := graph.HoldBodyBudget(h.endpoint)
			held := true
			defer func() {
				if held {
					hold()
				}
			}()
			sent := make(chan error, 1)
			go func() { sent <- writeMessage(big.c, msg, tc.fragment) }()
			eventually(t, 10*time.Second, "the reader to wait for the message's admission", func() bool {
				return graph.WebsocketAdmitting(h.endpoint) == 1
			})
			if got := sc.read.Load() - before; got != tc.unread {
				t.Fatalf("the server read %d bytes of the message before its admission, want %d", got, tc.unread)
			}

			small := mustDialWS(t, h.srv.URL, protoTransportWS)
			small.subscribe("small", cheapQuery, nil)
			if r := small.next(10 * time.Second); r.id != "small" || r.kind != "next" || string(r.data) != `{"headPosition":"0"}` {
				t.Fatalf("small message: got %+v", r)
			}
			if r := small.next(10 * time.Second); r.id != "small" || r.kind != "complete" {
				t.Fatalf("small message: got %+v, want complete", r)
			}
			if got := sc.read.Load() - before; got != tc.unread {
				t.Fatalf("the server read %d bytes of the waiting message, want %d", got, tc.unread)
			}

			hold()
			held = false
			if r := big.next(30 * time.Second); r.id != "big" || r.kind != "next" || string(r.data) != `{"headPosition":"0"}` {
				t.Fatalf("large message: got %+v", r)
			}
			if r := big.next(10 * time.Second); r.id != "big" || r.kind != "complete" {
				t.Fatalf("large message: got %+v, want complete", r)
			}
			if err := <-sent; err != nil {
				t.Fatalf("write: %v", err)
			}
			eventually(t, 10*time.Second, "the message to give up the body budget and the lane", func() bool {
				return graph.BodyBudgetFree(h.endpoint) && graph.HeavyLaneFree(h.endpoint)
			})
		})
	}
}

// paddedSubscribe is a subscribe (start, in graphql-ws) of query with vars
// whose JSON is exactly size bytes, padded with an unused variable.
func paddedSubscribe(proto, id, query string, vars map[string]any, size int) []byte {
	typ := "subscribe"
	if proto == protoGraphQLWS {
		typ = "start"
	}
	return padded(size, func(pad string) []byte {
		b, _ := json.Marshal(wsMessage{ID: id, Type: typ, Payload: paddedParams(query, vars, pad)})
		return b
	})
}

// paddedParams is the JSON of a request of query with vars and one more
// variable, pad, that the document does not use.
func paddedParams(query string, vars map[string]any, pad string) []byte {
	v := map[string]any{"pad": pad}
	for k, x := range vars {
		v[k] = x
	}
	b, _ := json.Marshal(map[string]any{"query": query, "variables": v})
	return b
}

// padded returns what of(pad) makes that is exactly size bytes long (pad is
// ASCII, so each byte of it is one byte of JSON).
func padded(size int, of func(pad string) []byte) []byte {
	return of(strings.Repeat("x", size-len(of(""))))
}

// writeMessage writes msg as one text message: in one frame, or in frames
// of fragment bytes and an empty last one (coder/websocket's Writer sends a
// frame per Write).
func writeMessage(c *websocket.Conn, msg []byte, fragment int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if fragment == 0 {
		return c.Write(ctx, websocket.MessageText, msg)
	}
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(fragment, len(msg))
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// countingListener counts the bytes the server reads on each connection.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

// last is the connection accepted last.
func (l *countingListener) last() *countingConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[len(l.conns)-1]
}

type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
