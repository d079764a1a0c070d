package graph

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// Shapes of gqlgen's websocket messages (unexported there): a payload, an id
// and a type with MarshalText.
type (
	testMsgType string
	testMsg     struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    testMsgType     `json:"type"`
		noOp    bool
	}
	testMsgNoTags struct {
		Payload json.RawMessage
		Type    string
	}
	testMsgNested struct {
		Payload map[string]any `json:"payload"`
		Type    string         `json:"type"`
	}
)

func (t testMsgType) MarshalText() ([]byte, error) { return []byte(t), nil }

func TestMessageEncodingMatchesJSON(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		fastPath bool
	}{
		{"next", &testMsg{Payload: json.RawMessage(`{"data":{"events":{"position":"7"}}}`), ID: "1", Type: "next"}, true},
		{"ping without payload", &testMsg{Payload: json.RawMessage{}, Type: "ping"}, true},
		{"complete", &testMsg{ID: "abc-123", Type: "complete"}, true},
		{"connection_ack", &testMsg{Type: "connection_ack"}, true},
		{"error list", &testMsg{Payload: json.RawMessage(`[{"message":"x","extensions":{"code":"FORBIDDEN"}}]`), ID: "9", Type: "error"}, true},
		{"no tags", &testMsgNoTags{Payload: json.RawMessage(`1`), Type: "ka"}, true},
		{"no tags, empty payload", &testMsgNoTags{Type: "ka"}, true},
		{"id to escape", &testMsg{ID: `a"b\c` + "\n", Type: "next", Payload: json.RawMessage(`{}`)}, true},
		{"id with html", &testMsg{ID: "<id>&", Type: "next", Payload: json.RawMessage(`{}`)}, true},
		{"id not ascii", &testMsg{ID: "é\u2028", Type: "next", Payload: json.RawMessage(`{}`)}, true},
		{"id not utf-8", &testMsg{ID: "a\xff", Type: "next", Payload: json.RawMessage(`{}`)}, true},
		{"not a flat struct", &testMsgNested{Payload: map[string]any{"a": 1}, Type: "x"}, false},
		{"not a pointer", testMsg{Type: "x"}, false},
		{"nil", (*testMsg)(nil), false},
	}
	c := &wsConn{slots: map[uint32]*deferSlot{}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.appendMessage([]byte("prefix"), tc.v)
			if ok != tc.fastPath {
				t.Fatalf("fast path %v, want %v", ok, tc.fastPath)
			}
			if !ok {
				if string(got) != "prefix" {
					t.Fatalf("a refused message left %q in the buffer", got)
				}
				return
			}
			want, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix"+string(want) {
				t.Fatalf("got  %s\nwant prefix%s", got, want)
			}
		})
	}
}

func TestDeferredPayloads(t *testing.T) {
	c := &wsConn{slots: map[uint32]*deferSlot{}}
	encode := func(typ string, payload []byte) string {
		b, ok := c.appendMessage(nil, &testMsg{Payload: payload, ID: "1", Type: testMsgType(typ)})
		if !ok {
			t.Fatal("not encoded")
		}
		return string(b)
	}
	resp := func(ph []byte) []byte {
		b, err := json.Marshal(graphql.Response{Data: ph}) // what gqlgen's sendResponse makes of it
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	s := c.newSlot()
	if got := encode("next", resp(s.put([]byte(`{"events":{"position":"5"}}`)))); got != `{"payload":{"data":{"events":{"position":"5"}}},"id":"1","type":"next"}` {
		t.Fatalf("got %s", got)
	}
	if s.data != nil {
		t.Fatal("the slot still holds the payload after use")
	}
	// With extensions after the data, as gqlgen would add them.
	ext, _ := json.Marshal(graphql.Response{Data: s.put([]byte(`{"x":1}`)), Extensions: map[string]any{"k": 1}})
	if got := encode("next", ext); got != `{"payload":{"data":{"x":1},"extensions":{"k":1}},"id":"1","type":"next"}` {
		t.Fatalf("with extensions: %s", got)
	}
	// The legacy protocol's data message.
	if got := encode("data", resp(s.put([]byte(`{"y":2}`)))); got != `{"payload":{"data":{"y":2}},"id":"1","type":"data"}` {
		t.Fatalf("legacy data message: %s", got)
	}

	// An id that needs escaping: the data still goes in. (It went out as
	// the placeholder once, when such messages were left to json.Marshal.)
	if got, _ := c.appendMessage(nil, &testMsg{Payload: resp(s.put([]byte(`{"z":3}`))), ID: "a<b", Type: "next"}); string(got) != `{"payload":{"data":{"z":3}},"id":"a\u003cb","type":"next"}` {
		t.Fatalf("id to escape: %s", got)
	}

	// A placeholder in a message that is not data (a client's ping echoed
	// as pong) is left alone, and so is the slot.
	ph := s.put([]byte(`{"secret":1}`))
	if got := encode("pong", resp(ph)); got != `{"payload":{"data":`+string(ph)+`},"id":"1","type":"pong"}` {
		t.Fatalf("pong %s", got)
	}
	s.data = nil

	// Unknown slots, empty slots and other shapes go out as they are.
	other := c.newSlot()
	for _, p := range []string{`{"data":-99}`, `{"data":-` + strconv.Itoa(int(other.n)) + `}`, `{"data":-1x}`, `{"data":-}`, `{"data":-1`, `{"errors":[],"data":-1}`} {
		if got := encode("next", []byte(p)); got != `{"payload":`+p+`,"id":"1","type":"next"}` {
			t.Fatalf("%s became %s", p, got)
		}
	}
	c.dropSlot(other)
	c.dropSlot(s)
	if len(c.slots) != 0 {
		t.Fatalf("%d slots left", len(c.slots))
	}

	// Subscriptions of one connection write at the same time, each in its
	// own goroutine; each gets its own data.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := c.newSlot()
			defer c.dropSlot(s)
			for i := 0; i < 200; i++ {
				data := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				p, _ := json.Marshal(graphql.Response{Data: s.put([]byte(data))})
				b, _ := c.appendMessage(nil, &testMsg{Payload: p, ID: "1", Type: "next"})
				if want := `{"payload":{"data":` + data + `},"id":"1","type":"next"}`; string(b) != want {
					errs <- fmt.Errorf("got %s, want %s", b, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
