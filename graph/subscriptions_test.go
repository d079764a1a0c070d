package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

const subEvents = `subscription($from: Position, $prefix: String, $types: [String!]) {
	events(afterPosition: $from, streamPrefix: $prefix, types: $types) { id streamId version position type data }
}`

const subStream = `subscription($s: String!, $v: Int) {
	streamEvents(streamId: $s, afterVersion: $v) { streamId version position data }
}`

// subscriber is one subscription over any transport.
type subscriber interface {
	next(timeout time.Duration) result
}

type wsSub struct {
	w  *wsClient
	id string
}

func (s wsSub) next(timeout time.Duration) result {
	r := s.w.next(timeout)
	if r.kind != "closed" && r.id != s.id {
		s.w.t.Fatalf("message for operation %q, want %q", r.id, s.id)
	}
	return r
}

// transports lists the ways to subscribe; each returns a subscriber and a
// function that drops its connection.
var transports = []struct {
	name      string
	subscribe func(t *testing.T, h *harness, query string, vars map[string]any) (subscriber, func())
}{
	{protoTransportWS, func(t *testing.T, h *harness, q string, v map[string]any) (subscriber, func()) {
		w := mustDialWS(t, h.srv.URL, protoTransportWS)
		w.subscribe("1", q, v)
		return wsSub{w, "1"}, func() { w.c.CloseNow() }
	}},
	{protoGraphQLWS, func(t *testing.T, h *harness, q string, v map[string]any) (subscriber, func()) {
		w := mustDialWS(t, h.srv.URL, protoGraphQLWS)
		w.subscribe("a", q, v)
		return wsSub{w, "a"}, func() { w.c.CloseNow() }
	}},
	{"sse", func(t *testing.T, h *harness, q string, v map[string]any) (subscriber, func()) {
		s := subscribeSSE(t, h.srv.Client(), h.srv.URL, q, v)
		return s, s.close
	}},
}

type subEvent struct {
	ID       string
	StreamID string
	Version  int64
	Position string
	Type     string
	Data     json.RawMessage
}

// receive reads n events of a subscription, failing on errors.
func receive(t *testing.T, s subscriber, field string, n int) []subEvent {
	t.Helper()
	var out []subEvent
	for len(out) < n {
		r := s.next(15 * time.Second)
		if r.kind != "next" || len(r.errors) > 0 {
			t.Fatalf("after %d of %d events: got %s %+v (%v)", len(out), n, r.kind, r.errors, r.closeErr)
		}
		var m map[string]subEvent
		if err := json.Unmarshal(r.data, &m); err != nil {
			t.Fatalf("data %s: %v", r.data, err)
		}
		out = append(out, m[field])
	}
	return out
}

func positions(t *testing.T, evs []subEvent) []int64 {
	var p []int64
	for _, e := range evs {
		p = append(p, pos(t, e.Position))
	}
	return p
}

func positionsOf(evs []eventstore.Event) []int64 {
	var p []int64
	for _, e := range evs {
		p = append(p, e.Position)
	}
	return p
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSubscriptionCatchUpLiveAndResume runs over each transport: catch-up
// from afterPosition "0", then live events, then a disconnect, events while
// disconnected, and a resume from the last position seen that delivers
// exactly the missed events.
func TestSubscriptionCatchUpLiveAndResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			h.t = t
			h.appendEvents("noise", "N", 0, 3) // filtered out by the prefix
			stored := h.appendEvents("sub-a", "A", 0, 5)
			s, drop := tr.subscribe(t, h, subEvents, map[string]any{"from": "0", "prefix": "sub-"})
			got := receive(t, s, "events", 5)
			if !equal(positions(t, got), positionsOf(stored)) {
				t.Fatalf("catch-up: got %v, want %v", positions(t, got), positionsOf(stored))
			}
			if got[0].StreamID != "sub-a" || got[0].Type != "A" || string(got[0].Data) != `{"i":0}` || got[0].Version != 1 {
				t.Errorf("first event %+v", got[0])
			}
			live := h.appendEvents("sub-b", "B", 0, 5)
			got = receive(t, s, "events", 5)
			if !equal(positions(t, got), positionsOf(live)) {
				t.Fatalf("live: got %v, want %v", positions(t, got), positionsOf(live))
			}
			last := got[2].Position // pretend the client processed only three
			drop()
			missed := append(live[3:], h.appendEvents("sub-a", "A", 5, 4)...)

			s, _ = tr.subscribe(t, h, subEvents, map[string]any{"from": last, "prefix": "sub-"})
			got = receive(t, s, "events", len(missed))
			if !equal(positions(t, got), positionsOf(missed)) {
				t.Fatalf("resume: got %v, want %v", positions(t, got), positionsOf(missed))
			}
			// And nothing else arrives.
			more := h.appendEvents("sub-c", "C", 0, 1)
			got = receive(t, s, "events", 1)
			if got[0].Position != strconv.FormatInt(more[0].Position, 10) {
				t.Fatalf("after resume: got %v, want %d", got[0].Position, more[0].Position)
			}
		})
	}
}

// TestStreamEventsSubscription subscribes to one stream from version 0 and
// from a later version.
func TestStreamEventsSubscription(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			h.appendEvents("one", "X", 1, 4)
			h.appendEvents("two", "Y", 1, 4)
			s, _ := tr.subscribe(t, h, subStream, map[string]any{"s": "one", "v": 0})
			s2, _ := tr.subscribe(t, h, subStream, map[string]any{"s": "one", "v": 3})
			h.appendEvents("one", "X", 5, 2)
			for _, c := range []struct {
				s    subscriber
				want []int64
			}{{s, []int64{1, 2, 3, 4, 5, 6}}, {s2, []int64{4, 5, 6}}} {
				var versions []int64
				for _, e := range receive(t, c.s, "streamEvents", len(c.want)) {
					if e.StreamID != "one" {
						t.Fatalf("event of stream %s", e.StreamID)
					}
					versions = append(versions, e.Version)
				}
				if !equal(versions, c.want) {
					t.Errorf("versions %v, want %v", versions, c.want)
				}
			}
		})
	}
}

// TestSubscriptionConcurrentWriters: 8 writers append 400 events while a
// client catches up from the start; it receives each once, in order.
func TestSubscriptionConcurrentWriters(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("w-0", "W", 0, 50)
	w := mustDialWS(t, h.srv.URL, protoTransportWS)
	w.subscribe("1", subEvents, map[string]any{"from": "0"})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				_, err := h.store.Append(context.Background(), fmt.Sprintf("w-%d", i+1), eventstore.Any{},
					eventstore.NewEvent{Type: "W", Data: json.RawMessage(strconv.Itoa(j))})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	got := positions(t, receive(t, wsSub{w, "1"}, "events", 450))
	wg.Wait()
	for i, p := range got {
		if p != int64(i+1) {
			t.Fatalf("event %d has position %d; want 1..450 in order", i, p)
		}
	}
}

// TestSubscriptionEndsWithCodedError: when the store goes away under a
// subscription, the client gets a final payload with STORE_UNAVAILABLE and
// the operation completes, over every transport.
func TestSubscriptionEndsWithCodedError(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			h.appendEvents("e", "X", 0, 1)
			s, _ := tr.subscribe(t, h, subEvents, map[string]any{"from": "0"})
			receive(t, s, "events", 1)
			if err := h.store.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := s.next(10 * time.Second)
			if r.kind != "next" {
				t.Fatalf("got %s (%v), want a payload with errors", r.kind, r.closeErr)
			}
			wantCode(t, r.errors, graph.CodeStoreUnavailable)
			if r := s.next(10 * time.Second); r.kind != "complete" {
				t.Fatalf("got %s, want complete", r.kind)
			}
		})
	}
}

// TestSubscriptionLimits: subscriptions per connection, and the cap on
// connections.
func TestSubscriptionLimits(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.MaxSubscriptionsPerConn = 3; c.MaxStreams = 2 })
	w := mustDialWS(t, h.srv.URL, protoTransportWS)
	// active waits until the subscriptions with these ids all receive an
	// event: operations start concurrently, so this is how the test knows
	// they run.
	active := func(ids ...string) {
		t.Helper()
		h.appendEvents("x", "X", 0, 1)
		seen := map[string]bool{}
		for len(seen) < len(ids) {
			r := w.next(5 * time.Second)
			if r.kind != "next" || len(r.errors) > 0 {
				t.Fatalf("got %+v", r)
			}
			seen[r.id] = true
		}
		for _, id := range ids {
			if !seen[id] {
				t.Fatalf("events went to %v, want %v", seen, ids)
			}
		}
	}
	// Each starts at the current head, so that it gets the next event even if
	// it starts after the event was appended.
	fromHead := func() map[string]any { return map[string]any{"from": h.store.HeadPosition()} }
	for i := 1; i <= 3; i++ {
		w.subscribe(strconv.Itoa(i), subEvents, fromHead())
	}
	active("1", "2", "3")
	w.subscribe("4", subEvents, fromHead())
	r := w.next(5 * time.Second)
	if r.id != "4" || r.kind != "error" { // before execution: an error message, no complete
		t.Fatalf("got %+v", r)
	}
	wantCode(t, r.errors, graph.CodeTooManySubscriptions)
	// Ending one makes room for another at once.
	w.stop("2")
	w.subscribe("5", subEvents, fromHead())
	active("1", "3", "5")

	// Connection cap: one more stream fits, the third is refused.
	s := subscribeSSE(t, h.srv.Client(), h.srv.URL, subEvents, nil)
	defer s.close()
	_, err := dialWS(t, h.srv.URL, protoTransportWS, nil)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("third connection: %v, want a 503", err)
	}
}

// TestWebsocketProtocolCloseCodes: a client that never sends connection_init
// is closed after the init timeout, with 4408 under both subprotocols.
func TestWebsocketProtocolCloseCodes(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.InitTimeout = 200 * time.Millisecond })
	for _, c := range []struct {
		proto string
		code  websocket.StatusCode
	}{{protoTransportWS, 4408}, {protoGraphQLWS, 4408}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, _, err := websocket.Dial(ctx, "ws"+h.srv.URL[4:]+"/graphql", &websocket.DialOptions{Subprotocols: []string{c.proto}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = conn.Read(ctx)
		cancel()
		if got := websocket.CloseStatus(err); got != c.code {
			t.Errorf("%s: close status %d (%v), want %d", c.proto, got, err, c.code)
		}
		conn.CloseNow()
	}
}

// TestShutdownClosesStreams: Endpoint.Shutdown closes websockets with 1001
// (going away), so that clients reconnect and resume, completes SSE streams,
// and refuses new ones.
func TestShutdownClosesStreams(t *testing.T) {
	h := newHarness(t)
	var ws []*wsClient
	for i, proto := range []string{protoTransportWS, protoGraphQLWS} {
		w := mustDialWS(t, h.srv.URL, proto)
		w.subscribe(strconv.Itoa(i), subEvents, nil)
		ws = append(ws, w)
	}
	sse := subscribeSSE(t, h.srv.Client(), h.srv.URL, subEvents, nil)
	eventually(t, 5*time.Second, "three streams", func() bool { return h.endpoint.Streams() == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.endpoint.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		r := w.next(5 * time.Second)
		if r.kind != "closed" || websocket.CloseStatus(r.closeErr) != websocket.StatusGoingAway {
			t.Errorf("%s: got %s %v, want close 1001", w.proto, r.kind, r.closeErr)
		}
	}
	if r := sse.next(5 * time.Second); r.kind != "complete" && r.kind != "closed" {
		t.Errorf("sse: got %+v", r)
	}
	if _, err := dialWS(t, h.srv.URL, protoTransportWS, nil); err == nil {
		t.Error("a websocket was accepted after shutdown")
	}
}

// TestSubscriptionGoroutineLeak subscribes and unsubscribes 1,000 times over
// one connection, opens and drops 50 connections and 50 SSE streams, and
// checks that the goroutine count returns to where it started and no store
// subscription is left open. Goroutines are polled, not slept for: a closed
// websocket's close handshake may take a moment.
func TestSubscriptionGoroutineLeak(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("leak", "X", 0, 3)
	// Warm up: the first connection starts pools and timers that stay.
	w := mustDialWS(t, h.srv.URL, protoTransportWS)
	w.subscribe("warm", subEvents, map[string]any{"from": "0"})
	receive(t, wsSub{w, "warm"}, "events", 1)
	w.unsubscribe("warm")
	w.c.Close(websocket.StatusNormalClosure, "")
	h.srv.Client().CloseIdleConnections()
	subscribers := h.store.Stats().Subscribers // the projector's own
	settle := func(limit int) int {
		deadline := time.Now().Add(20 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if limit < 0 || n <= limit {
				return n
			}
			if time.Now().After(deadline) {
				// Name the goroutines that stayed, so that a failure can
				// be told apart from slowness.
				var dump strings.Builder
				_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Fatalf("%d goroutines after 20s, want at most %d:\n%s", n, limit, dump.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(200 * time.Millisecond)
	baseline := settle(-1)

	w = mustDialWS(t, h.srv.URL, protoTransportWS)
	for i := 0; i < 1000; i++ {
		id := strconv.Itoa(i)
		vars := map[string]any{"from": "0"}
		if i%2 == 1 {
			vars = nil // live only
		}
		w.subscribe(id, subEvents, vars)
		if vars != nil {
			receive(t, wsSub{w, id}, "events", 1)
		}
		w.stop(id)
	}
	w.c.Close(websocket.StatusNormalClosure, "")
	for i := 0; i < 50; i++ {
		c := mustDialWS(t, h.srv.URL, []string{protoTransportWS, protoGraphQLWS}[i%2])
		c.subscribe("1", subEvents, map[string]any{"from": "0"})
		receive(t, wsSub{c, "1"}, "events", 1)
		c.c.CloseNow()
		s := subscribeSSE(t, h.srv.Client(), h.srv.URL, subEvents, map[string]any{"from": "0"})
		receive(t, s, "events", 1)
		s.close()
	}
	h.srv.Client().CloseIdleConnections()
	eventually(t, 20*time.Second, "store subscriptions to close", func() bool { return h.store.Stats().Subscribers == subscribers })
	eventually(t, 20*time.Second, "streams to close", func() bool { return h.endpoint.Streams() == 0 })
	n := settle(baseline + 2)
	t.Logf("goroutines: baseline %d, after %d", baseline, n)
}
