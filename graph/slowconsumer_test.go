package graph_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// TestStalledClientIsEnded: a real client subscribes, then stops reading its
// TCP socket (a small receive buffer, nothing read) while writers append
// events of about 1 KB, far more than the kernel's buffers hold. Over
// websocket (both subprotocols) and SSE:
//   - every append completes while the client reads nothing: writers never
//     wait for a subscriber;
//   - the server ends the subscription (its store subscription is closed)
//     while the client still reads nothing, and holds no more than its write
//     buffer for it meanwhile: memory stays bounded;
//   - the lag metric (Endpoint.SubscriberLags) shows it more than the limit
//     behind before it is ended;
//   - when the client reads again it gets a gap-free prefix of the events,
//     fewer than were appended minus the allowed lag, then
//     SUBSCRIBER_TOO_SLOW, then complete.
func TestStalledClientIsEnded(t *testing.T) {
	maxLag, n, size := 1000, 20000, 1000
	if testing.Short() {
		// 8 MB, still about twice what the kernel's buffers take.
		maxLag, n, size = 200, 2000, 4000
	}
	for _, proto := range []string{protoTransportWS, protoGraphQLWS, "sse"} {
		t.Run(proto, func(t *testing.T) {
			h := newHarness(t, func(c *graph.EndpointConfig) {
				c.Resolver.Limits = graph.Limits{SubscriberMaxLag: int64(maxLag), SlowCheckInterval: 50 * time.Millisecond}
				// The write deadline would drop the stalled client under
				// -race on a busy machine; the policy must end it first.
				c.StreamWriteTimeout = 5 * time.Minute
			})
			eventually(t, 10*time.Second, "the projections' subscriptions", func() bool { return h.store.Stats().Subscribers == backgroundSubscribers })
			c := stallingClient(t, h.srv.URL, proto)
			eventually(t, 10*time.Second, "the subscription", func() bool { return h.store.Stats().Subscribers == backgroundSubscribers+1 })

			data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", size)})
			batch := make([]eventstore.NewEvent, 100)
			for i := range batch {
				batch[i] = eventstore.NewEvent{Type: "Pad", Data: data}
			}
			var maxHeld, maxLagSeen int64
			for i := 0; i < n/len(batch); i++ {
				if _, err := h.store.Append(context.Background(), fmt.Sprintf("pad-%d", i%10), eventstore.Any{}, batch...); err != nil {
					t.Fatal(err)
				}
				maxHeld = max(maxHeld, h.endpoint.WebsocketHeld())
				h.endpoint.SubscriberLags(func(lag int64) { maxLagSeen = max(maxLagSeen, lag) })
			}
			// All appended while the client read nothing.
			eventually(t, 20*time.Second, "the stalled subscription to end", func() bool {
				maxHeld = max(maxHeld, h.endpoint.WebsocketHeld())
				return h.store.Stats().Subscribers == backgroundSubscribers
			})
			if maxLagSeen <= int64(maxLag) {
				t.Errorf("the lag metric saw at most %d positions behind, want more than %d", maxLagSeen, maxLag)
			}
			if maxHeld > 16<<10 {
				t.Errorf("the transport held %d bytes for the stalled client", maxHeld)
			}

			got, last, errs := c.drain(t)
			if got == 0 || got >= n-maxLag {
				t.Errorf("received %d of %d events before the end, want between 1 and %d", got, n, n-maxLag-1)
			}
			wantCode(t, errs, graph.CodeSubscriberTooSlow)
			t.Logf("received %d of %d events (up to position %d), then SUBSCRIBER_TOO_SLOW; transport held at most %d bytes", got, n, last, maxHeld)
		})
	}
}

// stalling is a subscriber to every new event that reads nothing until drain.
type stalling struct {
	proto string
	nc    net.Conn
	br    *bufio.Reader
}

func stallingClient(t *testing.T, serverURL, proto string) *stalling {
	t.Helper()
	nc, host := dialTCP(t, serverURL, "")
	_ = nc.(*net.TCPConn).SetReadBuffer(16 << 10) // so that the kernel holds little
	s := &stalling{proto: proto, nc: nc, br: bufio.NewReader(nc)}
	const query = `{"query":"subscription { events { position data } }"}`
	if proto == "sse" {
		fmt.Fprintf(nc, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s",
			host, len(query), query)
		resp, err := http.ReadResponse(s.br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("sse: %v %v", resp, err)
		}
		s.br = bufio.NewReader(resp.Body) // de-chunked
		return s
	}
	c := dialRawOn(t, nc, host, proto)
	s.br = c.br
	c.run(0, text(initMsg))
	c.run(1, expect(ack))
	typ := "subscribe"
	if proto == protoGraphQLWS {
		typ = "start"
	}
	c.run(2, text(`{"id":"1","type":"`+typ+`","payload":`+query+`}`))
	return s
}

// drain reads the subscription to its end: how many events came, the last
// position, and the errors of the final payload.
func (s *stalling) drain(t *testing.T) (got int, last int64, errs []gqlError) {
	t.Helper()
	_ = s.nc.(*net.TCPConn).SetReadBuffer(4 << 20) // reading at full speed now
	_ = s.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	handle := func(payload []byte) bool {
		var p struct {
			Data *struct {
				Events struct {
					Position string `json:"position"`
				} `json:"events"`
			} `json:"data"`
			Errors []gqlError `json:"errors"`
		}
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Fatalf("payload %.200s: %v", payload, err)
		}
		if len(p.Errors) > 0 {
			errs = p.Errors
			return false
		}
		var pos int64
		fmt.Sscan(p.Data.Events.Position, &pos)
		if last != 0 && pos != last+1 {
			t.Fatalf("position %d after %d", pos, last)
		}
		last = pos
		got++
		return true
	}
	if s.proto == "sse" {
		for {
			l, err := s.br.ReadString('\n')
			if err != nil {
				t.Fatalf("sse after %d events: %v", got, err)
			}
			if strings.HasPrefix(l, "data: ") && !handle([]byte(strings.TrimPrefix(l, "data: "))) {
				for !strings.HasPrefix(l, "event: complete") {
					if l, err = s.br.ReadString('\n'); err != nil {
						t.Fatalf("sse: no complete after the error: %v", err)
					}
				}
				return got, last, errs
			}
		}
	}
	for {
		f, err := ws.ReadFrame(s.br)
		if err != nil {
			t.Fatalf("websocket after %d events: %v", got, err)
		}
		var m struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if f.Header.OpCode != ws.OpText || json.Unmarshal(f.Payload, &m) != nil {
			t.Fatalf("frame %d %.200s", f.Header.OpCode, f.Payload)
		}
		switch m.Type {
		case "ka", "ping":
		case "next", "data":
			if !handle(m.Payload) {
				for {
					f, err := ws.ReadFrame(s.br)
					switch {
					case err == nil && (string(f.Payload) == `{"type":"ka"}` || string(f.Payload) == `{"type":"ping"}`):
						continue // keep-alives may come in between
					case err != nil || !strings.Contains(string(f.Payload), `"complete"`):
						t.Fatalf("after the error: %s %v", f.Payload, err)
					}
					return got, last, errs
				}
			}
		default:
			t.Fatalf("got %s", f.Payload)
		}
	}
}
