package graph_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
)

// The heavy lane holds for every transport: with the lane held by the test,
// a heavy operation over plain POST, a websocket or either mode of SSE waits
// for it (the test sees it waiting, and sees a cheap operation sent after it
// answered first), and completes once the lane is free. A subscription waits
// for the lane only while its document is validated: its events flow while
// the lane is held.

// Each subtest sends a document of its own (n): gqlgen caches a validated
// document and does not validate it again.
var laneCases = []struct {
	name  string
	query func(n int) string
	data  string
}{
	// 60 fields or more: validating it is heavy (heavyFields is 50).
	{"heavy document", func(n int) string { return "{ " + strings.Repeat("__typename ", 60+n) + "}" }, `{"__typename":"Query"}`},
	// over 16 KiB of document with 3 fields: parsing it is heavy (heavyQuery).
	{"large document", func(n int) string {
		types := make([]string, 2000+n)
		for i := range types {
			types[i] = fmt.Sprintf(`"type-%d"`, i)
		}
		return `{ events(first: 1, types: [` + strings.Join(types, " ") + `]) { edges { cursor } } }`
	}, `{"events":{"edges":[]}}`},
	// complexity 1 + (3 + 5) × (300 + n): executing it is heavy (heavyComplexity is 1,000).
	{"heavy execution", func(n int) string { return fmt.Sprintf(`{ events(first: %d) { edges { node { id } } } }`, 300+n) }, `{"events":{"edges":[]}}`},
}

const cheapQuery = `{ headPosition }`

// laneTransport sends a heavy operation while the test holds the lane,
// returns once it waits for the lane and has been seen not to have run, and
// returns the function that reads its one response once the lane is free.
type laneTransport struct {
	name  string
	start func(t *testing.T, h *harness, query string) (wait func() string)
}

// waitForLane waits until one operation waits for the lane.
func waitForLane(t *testing.T, h *harness) {
	t.Helper()
	eventually(t, 10*time.Second, "the operation to wait for the lane", func() bool { return graph.HeavyLaneWaiting(h.endpoint) == 1 })
}

func gqlRequest(t *testing.T, h *harness, method, query string, header ...string) *http.Request {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, err := http.NewRequest(method, h.srv.URL+"/graphql", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// sendAsync sends req from another goroutine: its response arrives on the
// channel (nil if the request failed).
func sendAsync(h *harness, req *http.Request) <-chan *http.Response {
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			resp = nil
		}
		done <- resp
	}()
	return done
}

// reply is a channel that has resp.
func reply(resp *http.Response) <-chan *http.Response {
	c := make(chan *http.Response, 1)
	c <- resp
	return c
}

func notAnswered(t *testing.T, done <-chan *http.Response) {
	t.Helper()
	select {
	case <-done:
		t.Fatal("the heavy operation was answered while the lane was held")
	default:
	}
}

func awaitResponse(t *testing.T, done <-chan *http.Response) *http.Response {
	t.Helper()
	select {
	case resp := <-done:
		if resp == nil {
			t.Fatal("the request failed")
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	case <-time.After(10 * time.Second):
		t.Fatal("no response")
	}
	return nil
}

// nextEvent reads one event of an event stream, which must be want.
func nextEvent(t *testing.T, events <-chan [2]string, want string) string {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok || e[0] != want {
			t.Fatalf("got event %q %s, want %s", e[0], e[1], want)
		}
		return e[1]
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s event", want)
	}
	return ""
}

// payload returns a result's data, failing on errors.
func payload(t *testing.T, raw string) string {
	t.Helper()
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil || len(r.Errors) > 0 {
		t.Fatalf("result %s: %v", raw, err)
	}
	return string(r.Data)
}

var laneTransports = []laneTransport{
	{"POST", func(t *testing.T, h *harness, q string) func() string {
		done := sendAsync(h, gqlRequest(t, h, http.MethodPost, q))
		waitForLane(t, h)
		notAnswered(t, done)
		return func() string {
			resp := awaitResponse(t, done)
			b, _ := io.ReadAll(resp.Body)
			return payload(t, string(b))
		}
	}},
	{"GET", func(t *testing.T, h *harness, q string) func() string {
		done := sendAsync(h, mustRequest(t, http.MethodGet, h.srv.URL+"/graphql?query="+url.QueryEscape(q), ""))
		waitForLane(t, h)
		notAnswered(t, done)
		return func() string { return payload(t, readAll(t, awaitResponse(t, done))) }
	}},
	{protoTransportWS, func(t *testing.T, h *harness, q string) func() string {
		w := mustDialWS(t, h.srv.URL, protoTransportWS)
		w.subscribe("heavy", q, nil)
		waitForLane(t, h)
		w.subscribe("cheap", cheapQuery, nil)
		// The cheap operation, sent after the heavy one, is answered first.
		if r := w.next(10 * time.Second); r.id != "cheap" || r.kind != "next" || string(r.data) != `{"headPosition":"0"}` {
			t.Fatalf("first message %+v, want the cheap operation's result", r)
		}
		if r := w.next(10 * time.Second); r.id != "cheap" || r.kind != "complete" {
			t.Fatalf("second message %+v, want the cheap operation's complete", r)
		}
		return func() string {
			r := w.next(10 * time.Second)
			if r.id != "heavy" || r.kind != "next" || len(r.errors) > 0 {
				t.Fatalf("got %+v, want the heavy operation's result", r)
			}
			if c := w.next(10 * time.Second); c.id != "heavy" || c.kind != "complete" {
				t.Fatalf("got %+v, want complete", c)
			}
			return string(r.data)
		}
	}},
	{"SSE", func(t *testing.T, h *harness, q string) func() string {
		done := sendAsync(h, gqlRequest(t, h, http.MethodPost, q, "Accept", "text/event-stream"))
		waitForLane(t, h)
		// A heavy document waits before the stream opens; a heavy
		// execution on the open stream, which has no event yet.
		var events <-chan [2]string
		open := func() {
			resp := awaitResponse(t, done)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			events = sseEvents(t, resp.Body)
		}
		select {
		case resp := <-done:
			done = reply(resp)
			open()
			select {
			case e := <-events:
				t.Fatalf("event %v while the lane was held", e)
			default:
			}
		default:
		}
		return func() string {
			if events == nil {
				open()
			}
			data := payload(t, nextEvent(t, events, "next"))
			nextEvent(t, events, "complete")
			return data
		}
	}},
	{"SSE single connection", func(t *testing.T, h *harness, q string) func() string {
		token := readAll(t, awaitResponse(t, sendAsync(h, mustRequest(t, http.MethodPut, h.srv.URL+"/graphql", ""))))
		stream := mustRequest(t, http.MethodGet, h.srv.URL+"/graphql?token="+token, "")
		stream.Header.Set("Accept", "text/event-stream")
		events := sseEvents(t, awaitResponse(t, sendAsync(h, stream)).Body)
		op := func(id, q string) *http.Request {
			b, _ := json.Marshal(map[string]any{"query": q, "extensions": map[string]any{"operationId": id}})
			req := mustRequest(t, http.MethodPost, h.srv.URL+"/graphql", string(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GraphQL-Event-Stream-Token", token)
			return req
		}
		// A heavy document waits in its POST (before validation), a heavy
		// execution in the stream's goroutine (after the POST's 202).
		heavy := sendAsync(h, op("heavy", q))
		waitForLane(t, h)
		if resp := awaitResponse(t, sendAsync(h, op("cheap", cheapQuery))); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("cheap POST: %d", resp.StatusCode)
		}
		if got := nextEvent(t, events, "next"); got != `{"id":"cheap","payload":{"data":{"headPosition":"0"}}}` {
			t.Fatalf("first event %s, want the cheap operation's", got)
		}
		nextEvent(t, events, "complete")
		return func() string {
			if resp := awaitResponse(t, heavy); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("heavy POST: %d", resp.StatusCode)
			}
			var ev struct {
				ID      string          `json:"id"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal([]byte(nextEvent(t, events, "next")), &ev); err != nil || ev.ID != "heavy" {
				t.Fatalf("event %+v: %v", ev, err)
			}
			nextEvent(t, events, "complete")
			return payload(t, string(ev.Payload))
		}
	}},
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLaneEveryTransport(t *testing.T) {
	h := newHarness(t)
	n := 0
	for _, tr := range laneTransports {
		for _, c := range laneCases {
			t.Run(tr.name+"/"+c.name, func(t *testing.T) {
				release := graph.HoldHeavyLane(h.endpoint)
				held := true
				defer func() {
					if held {
						release()
					}
				}()
				n++
				wait := tr.start(t, h, c.query(n))
				// Cheap requests do not wait for the lane.
				if status, errs, data := h.post(query(cheapQuery)); status != http.StatusOK || len(errs) > 0 || string(data) != `{"headPosition":"0"}` {
					t.Fatalf("cheap request while the lane is held: %d %+v %s", status, errs, data)
				}
				release()
				held = false
				if got := wait(); got != c.data {
					t.Fatalf("got %s, want %s", got, c.data)
				}
				eventually(t, 10*time.Second, "the lane to be free", func() bool { return graph.HeavyLaneFree(h.endpoint) })
			})
		}
	}
}

// TestLaneSubscription: a subscription with a heavy document waits for the
// lane while it is validated, and then leaves it: its events are delivered
// while the test holds the lane again.
func TestLaneSubscription(t *testing.T) {
	h := newHarness(t)
	sub := func(n int) string {
		return "subscription { events { " + strings.Repeat("__typename ", 55+n) + "position } }"
	}
	event := func(pos string) string { return `{"events":{"__typename":"Event","position":"` + pos + `"}}` }
	for i, tr := range []struct {
		name  string
		start func() func() result
	}{
		{protoTransportWS, func() func() result {
			w := mustDialWS(t, h.srv.URL, protoTransportWS)
			w.subscribe("s", sub(0), nil)
			return func() result { return w.next(10 * time.Second) }
		}},
		{"SSE", func() func() result {
			done := sendAsync(h, gqlRequest(t, h, http.MethodPost, sub(1), "Accept", "text/event-stream"))
			return func() result {
				resp := awaitResponse(t, done)
				s := &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body), stop: func() {}}
				return s.next(10 * time.Second)
			}
		}},
	} {
		t.Run(tr.name, func(t *testing.T) {
			release := graph.HoldHeavyLane(h.endpoint)
			next := tr.start()
			waitForLane(t, h)
			release()
			eventually(t, 10*time.Second, "the subscription", func() bool {
				return h.store.Stats().Subscribers >= int64(backgroundSubscribers+i+1)
			})
			if !graph.HeavyLaneFree(h.endpoint) {
				t.Fatal("a live subscription holds the lane")
			}
			release = graph.HoldHeavyLane(h.endpoint)
			defer release()
			ev := h.appendEvents("lane", "X", 2*i, 1)[0]
			if r := next(); r.kind != "next" || string(r.data) != event(strconv.FormatInt(ev.Position, 10)) {
				t.Fatalf("got %+v, want the event at %d", r, ev.Position)
			}
		})
	}
}

// TestLaneLargeSSEBody: an SSE subscription whose body is large (2 MiB of
// an unused variable) decodes it in the heavy lane and under the body
// budget, and gives both up once decoded, not when its stream ends.
func TestLaneLargeSSEBody(t *testing.T) {
	h := newHarness(t)
	body, _ := json.Marshal(map[string]any{"query": `subscription { events { position } }`,
		"variables": map[string]any{"pad": strings.Repeat("x", 2<<20)}})
	req := mustRequest(t, http.MethodPost, h.srv.URL+"/graphql", string(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	release := graph.HoldHeavyLane(h.endpoint)
	done := sendAsync(h, req)
	waitForLane(t, h)
	notAnswered(t, done)
	if graph.BodyBudgetFree(h.endpoint) {
		t.Fatal("the waiting body holds no share of the body budget")
	}
	release()
	resp := awaitResponse(t, done)
	eventually(t, 10*time.Second, "the subscription", func() bool { return h.store.Stats().Subscribers >= backgroundSubscribers+1 })
	if !graph.HeavyLaneFree(h.endpoint) || !graph.BodyBudgetFree(h.endpoint) {
		t.Fatalf("a live subscription holds the lane (free: %v) or the body budget (free: %v)",
			graph.HeavyLaneFree(h.endpoint), graph.BodyBudgetFree(h.endpoint))
	}
	ev := h.appendEvents("big-body", "X", 0, 1)[0]
	s := &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body), stop: func() {}}
	if r := s.next(10 * time.Second); r.kind != "next" || string(r.data) != fmt.Sprintf(`{"events":{"position":"%d"}}`, ev.Position) {
		t.Fatalf("got %+v", r)
	}
}

// TestLaneWebsocketMessage: a websocket message is decoded as a POST body
// is: a large one (2 MiB of an unused variable) takes its share of the body
// budget and waits for the heavy lane, and gives both up once decoded.
func TestLaneWebsocketMessage(t *testing.T) {
	h := newHarness(t)
	w := mustDialWS(t, h.srv.URL, protoTransportWS)
	release := graph.HoldHeavyLane(h.endpoint)
	payload, _ := json.Marshal(map[string]any{"query": cheapQuery, "variables": map[string]any{"pad": strings.Repeat("x", 2<<20)}})
	w.send(wsMessage{ID: "big", Type: "subscribe", Payload: payload})
	waitForLane(t, h)
	if graph.BodyBudgetFree(h.endpoint) {
		t.Fatal("the waiting message holds no share of the body budget")
	}
	release()
	if r := w.next(10 * time.Second); r.id != "big" || r.kind != "next" || string(r.data) != `{"headPosition":"0"}` {
		t.Fatalf("got %+v", r)
	}
	if r := w.next(10 * time.Second); r.id != "big" || r.kind != "complete" {
		t.Fatalf("got %+v, want complete", r)
	}
	// The reader gives both up when it is done with the message, which it
	// may be only just after the operation's answer went out.
	eventually(t, 10*time.Second, "the decoded message to give up the lane and the body budget", func() bool {
		return graph.HeavyLaneFree(h.endpoint) && graph.BodyBudgetFree(h.endpoint)
	})
}
