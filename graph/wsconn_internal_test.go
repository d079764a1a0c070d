package graph

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
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
		{"id to escape", &testMsg{ID: `a"b`, Type: "next", Payload: json.RawMessage(`{}`)}, false},
		{"id with html", &testMsg{ID: "<id>", Type: "next", Payload: json.RawMessage(`{}`)}, false},
		{"id not ascii", &testMsg{ID: "é", Type: "next", Payload: json.RawMessage(`{}`)}, false},
		{"not a flat struct", &testMsgNested{Payload: map[string]any{"a": 1}, Type: "x"}, false},
		{"not a pointer", testMsg{Type: "x"}, false},
		{"nil", (*testMsg)(nil), false},
	}
	c := &wsConn{deferred: map[uint64][]byte{}}
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
	c := &wsConn{deferred: map[uint64][]byte{}}
	encode := func(typ string, payload []byte) string {
		b, ok := c.appendMessage(nil, &testMsg{Payload: payload, ID: "1", Type: testMsgType(typ)})
		if !ok {
			t.Fatal("not encoded")
		}
		return string(b)
	}
	resp := func(ph []byte) []byte {
		b, err := json.Marshal(struct {
			Data json.RawMessage `json:"data"`
		}{ph}) // what gqlgen's sendResponse makes of it
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	ph := c.deferPayload([]byte(`{"events":{"position":"5"}}`))
	if got, want := encode("next", resp(ph)), `{"payload":{"data":{"events":{"position":"5"}}},"id":"1","type":"next"}`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if len(c.deferred) != 0 || c.deferredCount.Load() != 0 {
		t.Fatalf("%d entries left after use", len(c.deferred))
	}

	// A placeholder in a message that is not data (a client's ping echoed
	// as pong) is left alone, and so is its entry.
	ph = c.deferPayload([]byte(`{"secret":1}`))
	pong := encode("pong", ph)
	if pong != `{"payload":`+string(ph)+`,"id":"1","type":"pong"}` {
		t.Fatalf("pong %s", pong)
	}
	if got := encode("data", resp(ph)); got != `{"payload":{"data":{"secret":1}},"id":"1","type":"data"}` {
		t.Fatalf("legacy data message %s", got)
	}

	// An unknown or malformed placeholder goes out as it is.
	for _, p := range []string{`{"data":"\u0000hindsight-deferred:99"}`, `{"data":"\u0000hindsight-deferred:x"}`} {
		c.deferredCount.Store(1)
		if got := encode("next", []byte(p)); got != `{"payload":`+p+`,"id":"1","type":"next"}` {
			t.Fatalf("%s became %s", p, got)
		}
		c.deferredCount.Store(0)
	}

	// Subscriptions of one connection defer and write at the same time;
	// each gets its own data.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				data := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				b, _ := c.appendMessage(nil, &testMsg{Payload: resp(c.deferPayload([]byte(data))), ID: "1", Type: "next"})
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
