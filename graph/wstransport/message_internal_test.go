package wstransport

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

// decodeMessage reads what json.Unmarshal read into a message (a null id or
// type is absent, unknown members are skipped), leaves the payload as the
// message's bytes, and refuses what is not one JSON object of unique names.
func TestDecodeMessage(t *testing.T) {
	for _, c := range []struct {
		in, id, typ, payload string
		noID, bad            bool
	}{
		{in: `{"type":"connection_init"}`, typ: "connection_init", noID: true},
		{in: `{"id":"1","type":"subscribe","payload":{"query":"{ x }"}}`, id: "1", typ: "subscribe", payload: `{"query":"{ x }"}`},
		{in: ` { "payload" : [1, 2] , "id" : null, "type":null, "other": {"a":[{}]} } `, noID: true, payload: `[1, 2]`},
		{in: `{"type":"ping","payload":null}`, typ: "ping", noID: true, payload: `null`},
		{in: `{"id":1,"type":"subscribe"}`, bad: true},
		{in: `{"type":["x"]}`, bad: true},
		{in: `{"type":"a","type":"b"}`, bad: true},
		{in: `{"type":"a","payload":{"k":1,"k":2}}`, bad: true},
		{in: `{"type":"a"} {}`, bad: true},
		{in: `["type"]`, bad: true},
		{in: `{"type":"a"`, bad: true},
	} {
		b := []byte(c.in)
		m, err := decodeMessage(b)
		if c.bad {
			if err == nil {
				t.Errorf("%s: decoded %+v, want an error", c.in, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if (m.ID == nil) != c.noID || m.ID != nil && *m.ID != c.id || m.Type != c.typ || string(m.Payload) != c.payload {
			t.Errorf("%s: id %v, type %q, payload %s", c.in, m.ID, m.Type, m.Payload)
		}
		var v1 message
		if err := json.Unmarshal(b, &v1); err != nil || v1.Type != m.Type || (v1.ID == nil) != (m.ID == nil) {
			t.Errorf("%s: encoding/json reads %+v, %v", c.in, v1, err)
		}
		if len(m.Payload) > 0 {
			p, lo := uintptr(unsafe.Pointer(&m.Payload[0])), uintptr(unsafe.Pointer(&b[0]))
			if p < lo || p >= lo+uintptr(len(b)) {
				t.Errorf("%s: the payload was copied", c.in)
			}
		}
	}
}

// FuzzDecodeMessage: whatever decodeMessage takes, encoding/json takes too
// and reads the same id, type and payload (compared as JSON values) in the
// members of exactly those names.
// The seeds run with every `go test`; `-fuzz FuzzDecodeMessage` searches.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"connection_init","payload":{"token":"t"}}`,
		`{"id":"1","type":"subscribe","payload":{"query":"{ x }","variables":{"a":[1,2.50,-0,1e400]}}}`,
		` { "payload" : [1, 2] , "id" : null, "type":null, "other": {"a":[{}]} } `,
		`{"id":"\u00e9\ud83d\ude00","type":"complete"}`,
		`{"type":"a","type":"b"}`,
		`{"type":"a"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		// Names match exactly, as the protocols spell them (encoding/json
		// would also take "Payload" or "TYPE").
		var members map[string]json.RawMessage
		if err := json.Unmarshal(b, &members); err != nil {
			t.Fatalf("decodeMessage took %q, which encoding/json refuses: %v", b, err)
		}
		var v1 struct {
			ID, Type *string
			Payload  json.RawMessage
		}
		for name, dst := range map[string]any{"id": &v1.ID, "type": &v1.Type} {
			if raw, ok := members[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					t.Fatalf("decodeMessage took %q, whose %s encoding/json refuses: %v", b, name, err)
				}
			}
		}
		v1.Payload = members["payload"]
		typ := ""
		if v1.Type != nil {
			typ = *v1.Type
		}
		if (v1.ID == nil) != (m.ID == nil) || m.ID != nil && *m.ID != *v1.ID || m.Type != typ {
			t.Fatalf("%q: id %v type %q, encoding/json reads id %v type %q", b, m.ID, m.Type, v1.ID, typ)
		}
		if !sameJSON(t, m.Payload, v1.Payload) {
			t.Fatalf("%q: payload %s, encoding/json reads %s", b, m.Payload, v1.Payload)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared by their text; both empty is the same (no payload).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	decode := func(raw []byte) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}
