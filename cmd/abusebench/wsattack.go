package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// -transport ws: the attackers of the contention phase send the catalogue
// over websockets (graphql-transport-ws), one connection each, instead of
// POST, to see that the admission of heavy requests (body budget, heavy
// lane) holds there too. The `{ headPosition }` client stays on POST, so
// the two runs compare.

// wsAttacker is one attacker's connection.
type wsAttacker struct {
	c *websocket.Conn
}

func dialAttacker(ctx context.Context, base string) (*wsAttacker, error) {
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	w := &wsAttacker{c: c}
	if err := w.write(ctx, map[string]any{"type": "connection_init", "payload": map[string]any{}}); err != nil {
		return nil, err
	}
	m, err := w.read(ctx)
	if err != nil {
		return nil, err
	}
	if m.Type != "connection_ack" {
		return nil, fmt.Errorf("websocket: got %s, want connection_ack", m.Type)
	}
	return w, nil
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (w *wsAttacker) write(ctx context.Context, m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return w.c.Write(ctx, websocket.MessageText, b)
}

// read returns the next message that is not a ping (answered with a pong).
func (w *wsAttacker) read(ctx context.Context) (wsMessage, error) {
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			return wsMessage{}, err
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return m, fmt.Errorf("websocket: %.200s: %w", b, err)
		}
		if m.Type == "ping" {
			if err := w.write(ctx, map[string]any{"type": "pong"}); err != nil {
				return m, err
			}
			continue
		}
		return m, nil
	}
}

// do runs one request of the catalogue as operation n and checks its
// answer against a.want, as post does.
func (w *wsAttacker) do(ctx context.Context, a attack, n int) error {
	id := strconv.Itoa(n)
	if err := w.write(ctx, wsMessage{ID: id, Type: "subscribe", Payload: a.body(n)}); err != nil {
		return err
	}
	got := ""
	for {
		m, err := w.read(ctx)
		if err != nil {
			return err
		}
		if m.ID != id {
			return fmt.Errorf("websocket: a %s message for %q, want %q", m.Type, m.ID, id)
		}
		var errs []struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		}
		switch m.Type {
		case "next":
			var p struct {
				Errors json.RawMessage `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return err
			}
			if len(p.Errors) > 0 {
				_ = json.Unmarshal(p.Errors, &errs)
			}
		case "error": // refused before execution: the operation ends here
			_ = json.Unmarshal(m.Payload, &errs)
		case "complete":
			if got != a.want {
				return fmt.Errorf("websocket: got %s, want %s", got, a.want)
			}
			return nil
		default:
			return fmt.Errorf("websocket: unexpected %s message", m.Type)
		}
		if got = "ok"; len(errs) > 0 {
			got = errs[0].Extensions.Code
		}
		if m.Type == "error" {
			if got != a.want {
				return fmt.Errorf("websocket: got %s, want %s", got, a.want)
			}
			return nil
		}
	}
}

// attacker returns how one attacker sends a request over transport.
func attacker(ctx context.Context, c *benchserver.Client, transport string) (send func(a attack, n int) error, err error) {
	switch transport {
	case "post":
		return func(a attack, n int) error { _, err := post(ctx, c, a, n); return err }, nil
	case "sse":
		return func(a attack, n int) error { return sseDo(ctx, c, a, n) }, nil
	case "ws":
		w, err := dialAttacker(ctx, c.Base)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { w.c.CloseNow() })
		return func(a attack, n int) error { return w.do(ctx, a, n) }, nil
	}
	return nil, fmt.Errorf("unknown -transport %q: post, sse or ws", transport)
}
