package graph_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestSSESingleConnection: graphql-sse's single connection mode, request by
// request: PUT reserves a stream (201 and a token), GET opens it (404 for an
// unknown token, 409 for a second GET), POST runs operations on it (202; 400
// without an operationId or for a document that does not validate, 409 for
// a running operationId), DELETE stops one (200; 400 without an
// operationId), and a reservation that no stream takes lapses.
func TestSSESingleConnection(t *testing.T) {
	h := newHarness(t, func(c *graph.EndpointConfig) { c.InitTimeout = 500 * time.Millisecond })
	do := func(method, token, query, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, h.srv.URL+"/graphql"+query, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-GraphQL-Event-Stream-Token", token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	op := func(id, query string) string {
		b, _ := json.Marshal(map[string]any{"query": query, "extensions": map[string]any{"operationId": id}})
		return string(b)
	}
	status, token := do(http.MethodPut, "", "", "")
	if status != http.StatusCreated || len(token) != 32 {
		t.Fatalf("PUT: %d %q", status, token)
	}
	if status, _ := do(http.MethodGet, "nope", "", ""); status != http.StatusNotFound {
		t.Fatalf("GET with an unknown token: %d", status)
	}
	// An operation before the stream opens waits for it.
	if status, body := do(http.MethodPost, token, "", op("q1", `{ headPosition }`)); status != http.StatusAccepted {
		t.Fatalf("POST before the stream: %d %s", status, body)
	}

	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?token="+token, nil) // as EventSource sends it
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h.srv.Client().Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}
	defer resp.Body.Close()
	events := sseEvents(t, resp.Body)
	want := func(event, data string) {
		t.Helper()
		select {
		case e := <-events:
			var got, exp any
			if e[0] != event || json.Unmarshal([]byte(e[1]), &got) != nil || json.Unmarshal([]byte(data), &exp) != nil ||
				!jsonEqual(got, exp) {
				t.Fatalf("got %s %s, want %s %s", e[0], e[1], event, data)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s %s", event, data)
		}
	}
	want("next", `{"id":"q1","payload":{"data":{"headPosition":"0"}}}`)
	want("complete", `{"id":"q1"}`)

	if status, _ := do(http.MethodGet, token, "", ""); status != http.StatusConflict {
		t.Fatalf("a second GET: %d", status)
	}
	for _, c := range []struct {
		name, body string
		status     int
		part       string
	}{
		{"no operationId", `{"query":"{ headPosition }"}`, http.StatusBadRequest, "operationId"},
		{"invalid document", op("v", `{ nope }`), http.StatusBadRequest, "GRAPHQL_VALIDATION_FAILED"},
	} {
		if status, body := do(http.MethodPost, token, "", c.body); status != c.status || !strings.Contains(body, c.part) {
			t.Errorf("POST %s: %d %s", c.name, status, body)
		}
	}
	sub := `subscription { events { position } }`
	if status, _ := do(http.MethodPost, token, "", op("s", sub)); status != http.StatusAccepted {
		t.Fatalf("POST s: %d", status)
	}
	if status, _ := do(http.MethodPost, token, "", op("s", sub)); status != http.StatusConflict {
		t.Fatalf("POST s again: %d", status)
	}
	eventually(t, 10*time.Second, "the subscription", func() bool { return h.store.Stats().Subscribers >= backgroundSubscribers+1 })
	h.appendEvents("single", "X", 0, 1)
	want("next", `{"id":"s","payload":{"data":{"events":{"position":"1"}}}}`)
	if status, _ := do(http.MethodDelete, token, "", ""); status != http.StatusBadRequest {
		t.Fatalf("DELETE without operationId: %d", status)
	}
	if status, _ := do(http.MethodDelete, token, "?operationId=s", ""); status != http.StatusOK {
		t.Fatalf("DELETE: %d", status)
	}
	eventually(t, 10*time.Second, "the subscription to end", func() bool { return h.store.Stats().Subscribers == backgroundSubscribers })
	h.appendEvents("single", "X", 1, 1)
	do(http.MethodPost, token, "", op("q2", `{ headPosition }`))
	want("next", `{"id":"q2","payload":{"data":{"headPosition":"2"}}}`) // nothing of s before it
	want("complete", `{"id":"q2"}`)

	// A reservation nobody opens lapses.
	_, lapsed := do(http.MethodPut, "", "", "")
	time.Sleep(time.Second)
	if status, _ := do(http.MethodGet, lapsed, "", ""); status != http.StatusNotFound {
		t.Fatalf("GET of a lapsed reservation: %d", status)
	}
}

// sseEvents reads an event stream: each event as its name and data.
func sseEvents(t *testing.T, r io.Reader) <-chan [2]string {
	ch := make(chan [2]string, 16)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		var event, data string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\n")
			switch {
			case l == "" && event != "":
				ch <- [2]string{event, data}
				event, data = "", ""
			case strings.HasPrefix(l, "event: "):
				event = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				data = strings.TrimPrefix(l, "data: ")
			}
		}
	}()
	return ch
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
