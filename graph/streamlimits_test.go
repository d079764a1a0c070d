package graph_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
)

// upgradeFrom opens a websocket to the server from the local address ip and
// returns the handshake's status and, on 101, the client.
func upgradeFrom(t *testing.T, serverURL, ip string) (int, *rawWS) {
	t.Helper()
	nc, host := dialTCP(t, serverURL, ip)
	status, br, _ := handshake(t, nc, host, protoTransportWS)
	if status != http.StatusSwitchingProtocols {
		return status, nil
	}
	return status, &rawWS{t: t, nc: nc, br: br}
}

// TestPendingWebsocketsPerAddress: sockets that never send connection_init
// are capped per client address, so that they cannot keep a client that
// authenticates out: from the same address the next is refused with 429,
// from another address a reader gets in, and a pending socket that sends
// connection_init frees its place.
func TestPendingWebsocketsPerAddress(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) {
		c.Streams.MaxPendingPerAddr = 3
		c.MaxStreams = 10
	})
	var pending []*rawWS
	for i := 0; i < 3; i++ {
		status, c := upgradeFrom(t, h.srv.URL, "127.0.0.1")
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("pending socket %d: status %d", i, status)
		}
		pending = append(pending, c)
	}
	if status, _ := upgradeFrom(t, h.srv.URL, "127.0.0.1"); status != http.StatusTooManyRequests {
		t.Fatalf("a fourth pending socket from the address: status %d, want 429", status)
	}
	status, reader := upgradeFrom(t, h.srv.URL, "127.0.0.2")
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("another address: status %d", status)
	}
	reader.run(0, text(initMsg))
	reader.run(1, expect(ack))

	pending[0].run(0, text(initMsg))
	pending[0].run(1, expect(ack))
	if status, _ := upgradeFrom(t, h.srv.URL, "127.0.0.1"); status != http.StatusSwitchingProtocols {
		t.Fatalf("after one was acknowledged: status %d, want 101", status)
	}
}

// TestStreamsPerPrincipal: websockets and SSE streams are capped per
// principal (in auth mode none, the client address): one more websocket is
// closed with 1013 at connection_init, one more SSE stream gets 429; closing
// one makes room. Subscriptions are capped per principal over all its
// connections.
func TestStreamsPerPrincipal(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) {
		c.Streams.MaxConnectionsPerPrincipal = 2
		c.Streams.MaxSubscriptionsPerPrincipal = 3
	})
	a := mustDialWS(t, h.srv.URL, protoTransportWS)
	b := mustDialWS(t, h.srv.URL, protoGraphQLWS)
	c := dialRaw(t, h.srv.URL, protoTransportWS)
	c.run(0, text(initMsg))
	c.run(1, closed(1013))

	body := `{"query":"subscription { events { position } }"}`
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream over SSE: status %d, want 429", resp.StatusCode)
	}

	// Subscriptions: 2 on a, 1 on b, then b's second is one too many.
	fromHead := func() map[string]any { return map[string]any{"from": h.store.HeadPosition()} }
	a.subscribe("1", subEvents, fromHead())
	a.subscribe("2", subEvents, fromHead())
	b.subscribe("3", subEvents, fromHead())
	eventually(t, 10*time.Second, "three subscriptions", func() bool { return h.store.Stats().Subscribers >= 4 })
	b.subscribe("4", subEvents, fromHead())
	r := b.next(10 * time.Second)
	if r.id != "4" || r.kind != "next" {
		t.Fatalf("got %+v", r)
	}
	wantCode(t, r.errors, graph.CodeTooManySubscriptions)
	if r := b.next(10 * time.Second); r.id != "4" || r.kind != "complete" {
		t.Fatalf("got %+v", r)
	}
	a.stop("1")
	h.appendEvents("lim", "X", 0, 1)
	try := 0
	eventually(t, 10*time.Second, "room for a subscription", func() bool {
		try++
		id := fmt.Sprintf("5-%d", try)
		b.subscribe(id, subEvents, map[string]any{"from": "0"})
		r := b.next(10 * time.Second)
		for r.id != id { // events of 3
			r = b.next(10 * time.Second)
		}
		if len(r.errors) > 0 {
			b.next(10 * time.Second) // its complete
			return false
		}
		return r.kind == "next"
	})

	// Closing a websocket makes room for another connection.
	a.c.CloseNow()
	eventually(t, 10*time.Second, "room for a connection", func() bool {
		w, err := dialWS(t, h.srv.URL, protoTransportWS, nil)
		if err == nil {
			w.c.CloseNow()
		}
		return err == nil
	})
}
