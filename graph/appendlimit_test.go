package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// An append at exactly the documented limit (eventstore.MaxAppendBytes of
// data, 4 MiB) is taken over every transport and stored byte for byte as
// the canonical form of what was sent: escapes that JSON text need not
// carry are undone, big integers keep their digits, names keep their order.
// One byte more is refused with BAD_USER_INPUT and writes nothing. The data
// is sent with escapes, so the size the limit counts (the stored form) is
// smaller than what travels.
func TestAppendAtTheLimit(t *testing.T) {
	h := newHarness(t)
	const (
		sent   = `{"s":"\u00e9\"\\\n\ud83d\ude00","n":12345678901234567890,"f":2.50,"pad":"`
		stored = `{"s":"é\"\\\n😀","n":12345678901234567890,"f":2.50,"pad":"`
	)
	// data returns the data as sent and as it must be stored, the stored
	// form extra bytes over the limit.
	data := func(extra int) (string, string) {
		pad := strings.Repeat("x", eventstore.MaxAppendBytes+extra-len(stored)-len(`"}`))
		return sent + pad + `"}`, stored + pad + `"}`
	}
	const mutation = `mutation($e: [NewEvent!]!) { appendToStream(streamId: "limit", events: $e) { lastPosition } }`
	body := func(d string) string {
		return `{"query":` + mustJSON(mutation) + `,"variables":{"e":[{"type":"T","data":` + d + `}]}}`
	}

	// send appends over one transport and returns the first error's code,
	// or "" for a success.
	transports := []struct {
		name string
		send func(t *testing.T, d string) string
	}{
		{"POST", func(t *testing.T, d string) string {
			r := h.postRaw(body(d))
			if len(r.errs) > 0 {
				return r.errs[0].code()
			}
			return ""
		}},
		{"SSE", func(t *testing.T, d string) string {
			_, code, _ := sendSSE(t, h.srv.URL, []byte(body(d)))
			return code
		}},
		{protoTransportWS, func(t *testing.T, d string) string { return sendWS(t, h.srv.URL, protoTransportWS, body(d)) }},
		{protoGraphQLWS, func(t *testing.T, d string) string { return sendWS(t, h.srv.URL, protoGraphQLWS, body(d)) }},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			before := h.store.HeadPosition()
			atLimit, want := data(0)
			if code := tr.send(t, atLimit); code != "" {
				t.Fatalf("an append of exactly %d bytes: %s", eventstore.MaxAppendBytes, code)
			}
			evs, err := h.store.ReadStream(context.Background(), "limit", eventstore.ReadStreamOptions{Backward: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("read back: %d events, %v", len(evs), err)
			}
			if got := evs[0].Data; len(got) != eventstore.MaxAppendBytes || string(got) != want {
				t.Fatalf("stored %d bytes starting %.80s, want %d bytes starting %.80s", len(got), got, len(want), want)
			}
			over, _ := data(1)
			if code := tr.send(t, over); code != graph.CodeBadUserInput {
				t.Fatalf("an append of %d bytes: code %q, want %s", eventstore.MaxAppendBytes+1, code, graph.CodeBadUserInput)
			}
			if after := h.store.HeadPosition(); after != before+1 {
				t.Fatalf("head moved from %d to %d, want exactly one event", before, after)
			}
		})
	}
}

// sendWS runs one operation over a new websocket and returns the first
// error's code, or "" for a success.
func sendWS(t *testing.T, url, proto, payload string) string {
	t.Helper()
	w := mustDialWS(t, url, proto)
	typ := map[string]string{protoTransportWS: "subscribe", protoGraphQLWS: "start"}[proto]
	w.send(wsMessage{ID: "1", Type: typ, Payload: json.RawMessage(payload)})
	r := w.next(30 * time.Second)
	switch {
	case len(r.errors) > 0:
		return r.errors[0].code()
	case r.kind != "next":
		t.Fatalf("got %+v", r)
	}
	return ""
}

// sendSSE runs one operation over SSE (distinct connections mode) with the
// body as given. It returns the HTTP status, the first error's code ("" for
// none) and, on success, the operation's data: a refusal before the stream
// opened has its status and the JSON error shape, one during execution
// comes as the errors of the first next event.
func sendSSE(t *testing.T, url string, body []byte) (status int, code, data string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Data   json.RawMessage
		Errors []gqlError
	}
	if resp.StatusCode != http.StatusOK { // refused before the stream opened
		if err := json.Unmarshal(b, &r); err != nil || len(r.Errors) == 0 {
			t.Fatalf("status %d, body %.300s", resp.StatusCode, b)
		}
		return resp.StatusCode, r.Errors[0].code(), ""
	}
	_, next, ok := strings.Cut(string(b), "event: next\ndata: ")
	if !ok {
		t.Fatalf("no next event in %.300s", b)
	}
	next, _, _ = strings.Cut(next, "\n")
	if err := json.Unmarshal([]byte(next), &r); err != nil {
		t.Fatalf("next event %.300s: %v", next, err)
	}
	if len(r.Errors) > 0 {
		return resp.StatusCode, r.Errors[0].code(), ""
	}
	return resp.StatusCode, "", string(r.Data)
}
