package wstransport

import (
	"encoding/json"
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
