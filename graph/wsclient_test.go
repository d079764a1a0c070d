package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Test clients for subscriptions over real connections: a websocket client
// that speaks both graphql-transport-ws and the legacy graphql-ws (the
// subprotocol of subscriptions-transport-ws), and an SSE client in
// graphql-sse's distinct-connections mode.

const (
	protoTransportWS = "graphql-transport-ws"
	protoGraphQLWS   = "graphql-ws"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	t     *testing.T
	c     *websocket.Conn
	proto string
}

func dialWS(t *testing.T, serverURL, proto string, header http.Header) (*wsClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(serverURL, "http") + "/graphql"
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{proto}, HTTPHeader: header})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(16 << 20)
	w := &wsClient{t: t, c: c, proto: proto}
	if c.Subprotocol() != proto {
		return nil, fmt.Errorf("negotiated %q, want %q", c.Subprotocol(), proto)
	}
	w.send(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)})
	m, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	if m.Type != "connection_ack" {
		return nil, fmt.Errorf("got %s, want connection_ack", m.Type)
	}
	return w, nil
}

func mustDialWS(t *testing.T, serverURL, proto string) *wsClient {
	t.Helper()
	w, err := dialWS(t, serverURL, proto, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", proto, err)
	}
	t.Cleanup(func() { w.c.CloseNow() })
	return w
}

func (w *wsClient) send(m wsMessage) {
	w.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("write %s: %v", m.Type, err)
	}
}

func (w *wsClient) subscribe(id, query string, vars map[string]any) {
	w.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if w.proto == protoGraphQLWS {
		typ = "start"
	}
	w.send(wsMessage{ID: id, Type: typ, Payload: payload})
}

func (w *wsClient) unsubscribe(id string) {
	w.t.Helper()
	typ := "complete"
	if w.proto == protoGraphQLWS {
		typ = "stop"
	}
	w.send(wsMessage{ID: id, Type: typ})
}

// stop ends operation id and returns once the server has done so, skipping
// the messages of id still on their way. graphql-ws (legacy) answers stop
// with complete; graphql-transport-ws sends nothing more for an operation
// the client completed, so a ping sent after the complete is the barrier:
// its pong comes after the server has handled the complete.
func (w *wsClient) stop(id string) {
	w.t.Helper()
	w.unsubscribe(id)
	if w.proto == protoTransportWS {
		w.send(wsMessage{Type: "ping", Payload: json.RawMessage(`{"barrier":true}`)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m, err := w.readAll(ctx)
		if err != nil {
			w.t.Fatalf("stop %s: %v", id, err)
		}
		switch {
		case m.Type == "pong" && string(m.Payload) == `{"barrier":true}`:
			return
		case m.Type == "complete" && m.ID == id && w.proto == protoGraphQLWS:
			return
		case m.ID != id || (m.Type != "next" && m.Type != "data"):
			w.t.Fatalf("stop %s: got %+v", id, m)
		}
	}
}

// read returns the next message, answering pings and skipping keep-alives.
func (w *wsClient) read(ctx context.Context) (wsMessage, error) {
	for {
		m, err := w.readAll(ctx)
		if err != nil || m.Type != "pong" {
			return m, err
		}
	}
}

// readAll is read that returns pongs too.
func (w *wsClient) readAll(ctx context.Context) (wsMessage, error) {
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return wsMessage{}, err
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMessage{}, fmt.Errorf("message %q: %w", b, err)
		}
		switch m.Type {
		case "ping":
			w.send(wsMessage{Type: "pong"})
			continue
		case "ka":
			continue
		}
		return m, nil
	}
}

// result is one operation result: "next"/"data" with data or errors,
// "complete", or "error".
type result struct {
	id       string
	kind     string // next, complete, error
	data     json.RawMessage
	errors   []gqlError
	closeErr error // the connection closed
}

func (w *wsClient) next(timeout time.Duration) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := w.read(ctx)
	if err != nil {
		return result{kind: "closed", closeErr: err}
	}
	r := result{id: m.ID}
	switch m.Type {
	case "next", "data":
		r.kind = "next"
		var p struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			w.t.Fatalf("payload %s: %v", m.Payload, err)
		}
		r.data, r.errors = p.Data, p.Errors
	case "complete":
		r.kind = "complete"
	case "error":
		r.kind = "error"
		_ = json.Unmarshal(m.Payload, &r.errors)
	default:
		w.t.Fatalf("unexpected message %+v", m)
	}
	return r
}

// sseClient reads one SSE subscription.
type sseClient struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
	stop context.CancelFunc
}

func subscribeSSE(t *testing.T, hc *http.Client, serverURL, query string, vars map[string]any) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("sse: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		cancel()
		t.Fatalf("sse: status %d, content type %q", resp.StatusCode, ct)
	}
	s := &sseClient{t: t, resp: resp, r: bufio.NewReader(resp.Body), stop: cancel}
	t.Cleanup(s.close)
	return s
}

func (s *sseClient) close() {
	s.stop()
	s.resp.Body.Close()
}

// next returns the next event: "next" with its payload, or "complete".
func (s *sseClient) next(timeout time.Duration) result {
	t := s.t
	t.Helper()
	deadline := time.AfterFunc(timeout, s.close)
	defer deadline.Stop()
	event := ""
	var data []string
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return result{kind: "closed", closeErr: err}
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case l == "":
			if event == "" && len(data) == 0 {
				continue
			}
			if event == "complete" {
				return result{kind: "complete"}
			}
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []gqlError      `json:"errors"`
			}
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &p); err != nil {
				t.Fatalf("sse data %q: %v", data, err)
			}
			return result{kind: "next", data: p.Data, errors: p.Errors}
		case strings.HasPrefix(l, ":"):
			// comment / keep-alive
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(l, "event:"))
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimSpace(strings.TrimPrefix(l, "data:")))
		}
	}
}
