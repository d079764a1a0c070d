package graph_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// TestDataSafety proves that what a client sends is stored as meant or not
// at all: each request below is refused with BAD_USER_INPUT and writes
// nothing. Invalid UTF-8 and escaped lone surrogates would otherwise be
// replaced by U+FFFD when the JSON is decoded (the data stored altered);
// id: "" would be taken for "no id" (a retry stored twice); an append mixing
// events with and without ids could not be recognised when retried.
func TestDataSafety(t *testing.T) {
	h := newHarness(t)
	const mutation = `mutation($events: [NewEvent!]!) { appendToStream(streamId: "safe", events: $events) { lastPosition } }`
	const id1, id2 = "0192f0c4-0000-7000-8000-000000000001", "0192f0c4-0000-7000-8000-000000000002"
	// body is a request with the query encoded as JSON and the variables
	// as raw JSON text, so that their bytes reach the server as written.
	body := func(query, vars string) string {
		q, _ := json.Marshal(query)
		if vars == "" {
			return `{"query":` + string(q) + `}`
		}
		return `{"query":` + string(q) + `,"variables":` + vars + `}`
	}
	for _, c := range []struct {
		name, body, message string
	}{
		{"empty id in the query", body(`mutation { appendToStream(streamId: "safe", events: [{id: "", type: "T", data: 1}]) { lastPosition } }`, ""), "must not be empty"},
		{"empty id in variables", body(mutation, `{"events":[{"id":"","type":"T","data":1}]}`), "must not be empty"},
		{"ids on some events only", body(mutation, `{"events":[{"id":"`+id1+`","type":"T","data":1},{"type":"T","data":2}]}`), "every event of an append an id, or none"},
		{"invalid UTF-8 in the query", `{"query":"mutation { appendToStream(streamId: \"safe\", events: [{type: \"T\", data: \"a` + "\xff" + `b\"}]) { lastPosition } }"}`, "UTF-8"},
		{"invalid UTF-8 in variables", body(mutation, "{\"events\":[{\"type\":\"T\",\"data\":\"a\xe3\x82b\"}]}"), "UTF-8"},
		{"lone surrogate in the query", `{"query":"mutation { appendToStream(streamId: \"safe\", events: [{type: \"T\", data: \"a\ud800b\"}]) { lastPosition } }"}`, "UTF-8"},
		{"lone surrogate in variables", body(mutation, `{"events":[{"type":"T","data":"a\udc00b"}]}`), "UTF-8"},
		{"lone surrogate in metadata", body(mutation, `{"events":[{"type":"T","data":1,"metadata":{"k":"\ud83d"}}]}`), "UTF-8"},
		{"lone surrogate in an id", body(mutation, `{"events":[{"id":"`+id2+`\ud800","type":"T","data":1}]}`), "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.store.HeadPosition()
			_, errs, _ := h.post(c.body)
			e := wantCode(t, errs, graph.CodeBadUserInput)
			if !strings.Contains(e.Message, c.message) {
				t.Fatalf("message %q does not say %q", e.Message, c.message)
			}
			if after := h.store.HeadPosition(); after != before {
				t.Fatalf("head moved from %d to %d: the refused request wrote events", before, after)
			}
		})
	}

	// A query by GET is checked the same way.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?query="+url.QueryEscape("{ stream(id: \"a\xffb\") { version } }"), nil)
	status, errs, _ := h.httpDo(req)
	if status != http.StatusBadRequest {
		t.Fatalf("GET with invalid UTF-8: status %d, want 400", status)
	}
	wantCode(t, errs, graph.CodeBadUserInput)

	// The sound forms of the same requests are stored exactly as sent.
	_, errs, data := h.post(body(mutation, `{"events":[{"id":"`+id1+`","type":"T","data":"a\ud83d\ude00b"},{"id":"`+id2+`","type":"T","data":"ストリーム"}]}`))
	if len(errs) > 0 {
		t.Fatalf("sound append: %+v", errs)
	}
	evs, err := h.store.ReadStream(context.Background(), "safe", eventstore.ReadStreamOptions{})
	if err != nil || len(evs) != 2 || string(evs[0].Data) != `"a😀b"` || string(evs[1].Data) != `"ストリーム"` {
		t.Fatalf("stored %d events (%v; response %s); want the data as sent", len(evs), err, data)
	}
}
