package graph_test

import (
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

// A body is read the same way over plain POST and over SSE (both use
// requestParams): JSON data in a variable is stored compact with its names
// in the client's order, a variable the operation does not declare is
// ignored, and a name twice in one object is refused with 400 and nothing
// written.
func TestBodyDecodedAlikeOverPOSTAndSSE(t *testing.T) {
	h := newHarness(t)
	const mutation = `mutation($e: [NewEvent!]!) { appendToStream(streamId: "alike", events: $e) { lastPosition } }`
	for i, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			before := h.store.HeadPosition()
			ok := `{"query":` + mustJSON(mutation) + `,"variables":{"unused":{"big":"` + strings.Repeat("x", 1<<20) +
				`"},"e":[{"type":"T","data":{ "z" : [1, 2.50], "a":"\u00e9" }}]}}`
			if accept == "text/event-stream" {
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(ok))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", accept)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), accept) ||
					!strings.Contains(string(b), "event: next\ndata: {\"data\":{\"appendToStream\"") {
					t.Fatalf("status %d, stream %q", resp.StatusCode, b)
				}
			} else if r := h.postRaw(ok, "Accept", accept); r.status != http.StatusOK || len(r.errs) > 0 {
				t.Fatalf("status %d, errors %+v", r.status, r.errs)
			}
			evs, err := h.store.ReadStream(context.Background(), "alike", eventstore.ReadStreamOptions{})
			if err != nil || len(evs) != i+1 || string(evs[i].Data) != `{"z":[1,2.50],"a":"é"}` {
				t.Fatalf("stored %d events (%v), the last %s", len(evs), err, evs[len(evs)-1].Data)
			}
			r := h.postRaw(`{"query":`+mustJSON(mutation)+`,"variables":{"e":[{"type":"T","data":1,"data":2}]}}`, "Accept", accept)
			if r.status != http.StatusBadRequest {
				t.Fatalf("a name twice: status %d, want 400", r.status)
			}
			if e := wantCode(t, r.errs, graph.CodeBadUserInput); !strings.Contains(e.Message, "same name twice") {
				t.Fatalf("message %q", e.Message)
			}
			if after := h.store.HeadPosition(); after != before+1 {
				t.Fatalf("head moved from %d to %d, want one event", before, after)
			}
		})
	}
}

// A websocket subscribe (or start) payload is read as a POST body is: the
// same JSON data is stored the same way, over both subprotocols, and a
// message with a name twice is invalid and writes nothing.
func TestWebsocketPayloadDecodedAsPOST(t *testing.T) {
	h := newHarness(t)
	const mutation = `mutation($e: [NewEvent!]!) { appendToStream(streamId: "alike-ws", events: $e) { lastPosition } }`
	for i, proto := range []string{protoTransportWS, protoGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			w := mustDialWS(t, h.srv.URL, proto)
			typ := map[string]string{protoTransportWS: "subscribe", protoGraphQLWS: "start"}[proto]
			payload := `{"query":` + mustJSON(mutation) + `,"variables":{"unused":"` + strings.Repeat("x", 1<<20) +
				`","e":[{"type":"T","data":{ "z" : [1, 2.50], "a":"\u00e9" }}]}}`
			w.send(wsMessage{ID: "1", Type: typ, Payload: json.RawMessage(payload)})
			if r := w.next(10 * time.Second); r.kind != "next" || len(r.errors) > 0 {
				t.Fatalf("got %+v", r)
			}
			if r := w.next(10 * time.Second); r.kind != "complete" {
				t.Fatalf("got %+v, want complete", r)
			}
			evs, err := h.store.ReadStream(context.Background(), "alike-ws", eventstore.ReadStreamOptions{})
			if err != nil || len(evs) != i+1 || string(evs[i].Data) != `{"z":[1,2.50],"a":"é"}` {
				t.Fatalf("stored %d events (%v)", len(evs), err)
			}
			w.send(wsMessage{ID: "2", Type: typ, Payload: json.RawMessage(`{"query":` + mustJSON(mutation) + `,"variables":{"e":[{"type":"T","data":1,"data":2}]}}`)})
			// An invalid message: graphql-transport-ws closes (4400),
			// graphql-ws answers connection_error and stays.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := w.read(ctx)
			cancel()
			if proto == protoTransportWS && err == nil || proto == protoGraphQLWS && m.Type != "connection_error" {
				t.Fatalf("a name twice: got %+v, %v", m, err)
			}
			if evs, _ := h.store.ReadStream(context.Background(), "alike-ws", eventstore.ReadStreamOptions{}); len(evs) != i+1 {
				t.Fatalf("%d events after the refused payload, want %d", len(evs), i+1)
			}
		})
	}
}
