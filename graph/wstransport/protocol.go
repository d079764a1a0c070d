package wstransport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
)

// The two subprotocols, message by message. Where they differ:
//
//   - graphql-transport-ws (PROTOCOL.md of graphql-ws) closes the socket on
//     anything it does not expect: an invalid message (not JSON, an unknown
//     type, a subscribe without id or query) with 4400, a subscribe before
//     connection_ack with 4401, a duplicate running id with 4409, a second
//     connection_init with 4429. An operation's end is "complete" unless it
//     ended with "error"; an operation the client completed gets nothing
//     more, not even "complete".
//   - graphql-ws (subscriptions-transport-ws) answers an unparsable message
//     with connection_error and an unknown type with error, and keeps the
//     connection; a start with a running id replaces that operation; stop
//     is answered with complete.
//
// Both close with 4408 when connection_init does not come within InitTimeout,
// with 4401/4403 when it is refused, with 1001 at shutdown, and with RFC
// 6455's codes for frames that break RFC 6455 (1002), binary messages (1003),
// text that is not UTF-8 (1007) and messages over ReadLimit (1009). Text that
// is UTF-8 but that JSON decoding would alter (Config.CheckText) is an invalid
// message.

// handle handles one complete text message. It runs in the reader.
func (c *conn) handle(b []byte) {
	if c.t.cfg.Admit != nil {
		c.waiting.Store(true)
		release, ok := c.t.cfg.Admit(c.ctx, len(b))
		c.waiting.Store(false)
		if !ok {
			return
		}
		defer release() // the message is checked, and it and its operation's parameters decoded, here
	}
	if err := c.t.cfg.CheckText(b); err != nil {
		c.invalid("Invalid message received: " + err.Error())
		return
	}
	m, err := decodeMessage(b)
	if err != nil {
		c.invalid("Invalid message received: not a JSON message")
		return
	}
	if c.legacy {
		c.handleLegacy(&m)
	} else {
		c.handleTransportWS(&m)
	}
}

// invalid refuses a message that breaks the protocol.
func (c *conn) invalid(reason string) {
	if c.legacy {
		c.connectionError(reason)
		return
	}
	c.closeWith(CloseBadRequest, reason)
}

func (c *conn) handleTransportWS(m *message) {
	switch m.Type {
	case "connection_init":
		if c.inited {
			c.closeWith(CloseTooManyInits, "Too many initialisation requests")
			return
		}
		if !objectOrAbsent(m.Payload) {
			c.invalid("Invalid message received: the payload of connection_init must be an object")
			return
		}
		c.init(m.Payload)
	case "ping":
		if !objectOrAbsent(m.Payload) {
			c.invalid("Invalid message received: the payload of ping must be an object")
			return
		}
		c.mu.Lock()
		if present(m.Payload) {
			c.appendText([]byte(`{"type":"pong","payload":`), m.Payload, []byte(`}`))
		} else {
			c.appendText(pongMessage)
		}
		_ = c.flushLocked()
		c.mu.Unlock()
	case "pong":
		if !objectOrAbsent(m.Payload) {
			c.invalid("Invalid message received: the payload of pong must be an object")
		}
	case "subscribe":
		if !c.isAcked() {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		if m.ID == nil || *m.ID == "" {
			c.invalid("Invalid message received: subscribe needs an id")
			return
		}
		params, with, ok := c.decodeParams(m.Payload)
		if !ok {
			c.invalid("Invalid message received: subscribe needs a payload with a query")
			return
		}
		if c.running(*m.ID) {
			c.closeWith(CloseDuplicateID, "Subscriber for "+*m.ID+" already exists")
			return
		}
		c.start(*m.ID, params, with)
	case "complete":
		if m.ID == nil || *m.ID == "" {
			c.invalid("Invalid message received: complete needs an id")
			return
		}
		c.stop(*m.ID, false)
	default:
		c.invalid("Invalid message received: unexpected type " + quoteShort(m.Type))
	}
}

func (c *conn) handleLegacy(m *message) {
	switch m.Type {
	case "connection_init":
		if c.inited {
			c.connectionError("connection_init was already received")
			return
		}
		if !objectOrAbsent(m.Payload) {
			c.connectionError("the payload of connection_init must be an object")
			return
		}
		c.init(m.Payload)
	case "start":
		if !c.isAcked() {
			c.connectionError("send connection_init first")
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		if m.ID == nil || *m.ID == "" {
			c.connectionError("start needs an id")
			return
		}
		params, with, ok := c.decodeParams(m.Payload)
		if !ok {
			c.writeErrorMessage(*m.ID, errorPayload("start needs a payload with a query"))
			return
		}
		c.stop(*m.ID, true) // a running operation with this id is replaced
		c.start(*m.ID, params, with)
	case "stop":
		if m.ID != nil {
			c.stop(*m.ID, false)
		}
	case "connection_terminate":
		c.closeWith(CloseNormal, "")
	default:
		id := ""
		if m.ID != nil {
			id = *m.ID
		}
		c.writeErrorMessage(id, errorPayload("invalid message type "+quoteShort(m.Type)))
	}
}

// init handles connection_init: Config.Init decides.
func (c *conn) init(raw json.RawMessage) {
	c.mu.Lock()
	c.inited = true
	c.mu.Unlock()
	var payload map[string]any
	if present(raw) {
		_ = json.Unmarshal(raw, &payload) // an object, checked by the caller
	}
	ctx, expires, err := c.t.cfg.Init(c.ctx, c.req, payload)
	c.req = nil // only Init needs it
	if err != nil {
		code, reason := CloseForbidden, "Forbidden"
		var ie *InitError
		if errors.As(err, &ie) {
			code, reason = ie.Code, ie.Reason
		}
		if c.legacy {
			c.connectionError(reason)
		}
		c.closeWith(code, reason)
		return
	}
	c.ctx = ctx
	if !expires.IsZero() {
		t := time.AfterFunc(time.Until(expires), func() {
			c.closeWith(CloseForbidden, "the credential expired; reconnect with a new one")
		})
		c.stopAuth = t.Stop
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.acked = true
	c.timer.Stop()
	c.timer.Reset(c.t.cfg.KeepAlive)
	c.appendText(ackMessage)
	if c.legacy {
		c.appendText(kaMessage) // as subscriptions-transport-ws does
	}
	_ = c.flushLocked()
	c.mu.Unlock()
	if c.t.cfg.Acked != nil {
		c.t.cfg.Acked(ctx)
	}
}

func (c *conn) isAcked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// connectionError sends graphql-ws's connection_error.
func (c *conn) connectionError(msg string) {
	p, _ := json.Marshal(map[string]string{"message": msg})
	c.mu.Lock()
	if !c.closing {
		c.appendText([]byte(`{"type":"connection_error","payload":`), p, []byte(`}`))
		_ = c.flushLocked()
	}
	c.mu.Unlock()
}

// decodeParams decodes a subscribe/start payload: an object with a query
// string, and optionally operationName, variables and extensions; with
// Config.Params if set.
func (c *conn) decodeParams(raw json.RawMessage) (*graphql.RawParams, func(context.Context) context.Context, bool) {
	if !present(raw) {
		return nil, nil, false
	}
	if c.t.cfg.Params != nil {
		return c.t.cfg.Params(raw)
	}
	p, ok := decodeParams(raw)
	return p, nil, ok
}

func decodeParams(raw json.RawMessage) (*graphql.RawParams, bool) {
	var q struct {
		Query *string `json:"query"`
	}
	if !present(raw) || json.Unmarshal(raw, &q) != nil || q.Query == nil {
		return nil, false
	}
	var p graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // as gqlgen's transports decode: exact numbers for variables
	if err := dec.Decode(&p); err != nil {
		return nil, false
	}
	return &p, true
}

// present reports whether a payload was sent and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func objectOrAbsent(raw json.RawMessage) bool {
	return !present(raw) || raw[0] == '{' // json.Unmarshal leaves RawMessage without leading space
}

// quoteShort quotes s for a close reason, cut to a few dozen bytes.
func quoteShort(s string) string {
	b, _ := json.Marshal(truncate(s, 40))
	return string(b)
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// errorPayload is the payload of an error message with one error.
func errorPayload(msg string) []byte {
	b, _ := json.Marshal([]map[string]string{{"message": msg}})
	return b
}
