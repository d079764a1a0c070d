package graph_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/projections"
)

// TestStreamStateOverTheLimit: a stream whose merged state is over 4 MiB as
// JSON (700 KiB of '<', which JSON writes as \u003c) gets STATE_TOO_LARGE
// with the limit and what to do instead, writes nothing, and the server
// keeps serving its events and other streams' states.
func TestStreamStateOverTheLimit(t *testing.T) {
	h := newHarness(t)
	data := `{"s":"` + strings.Repeat("<", 700<<10) + `"}`
	if _, err := h.store.Append(t.Context(), "big", eventstore.NoStream{}, eventstore.NewEvent{Type: "E", Data: json.RawMessage(data)}); err != nil {
		t.Fatal(err)
	}
	h.appendEvents("small", "E", 0, 1)

	for _, at := range []string{"", "(at: {version: 1})"} {
		got, errs := h.do(`{ stream(id: "big") { id state`+at+` } }`, nil)
		if len(errs) != 1 || errs[0].code() != graph.CodeStateTooLarge {
			t.Fatalf("state%s: errors %+v", at, errs)
		}
		e := errs[0]
		if !strings.Contains(e.Message, "over the limit of 4194304 bytes") || !strings.Contains(e.Message, "read the stream's events instead") {
			t.Errorf("message %q", e.Message)
		}
		if e.Extensions["version"] != float64(1) || e.Extensions["limitBytes"] != float64(projections.MaxStreamStateBytes) ||
			e.Extensions["stateBytes"] != float64(700<<10*6+len(`{"s":""}`)) {
			t.Errorf("extensions %v", e.Extensions)
		}
		if want := `{"stream":{"id":"big","state":null}}`; string(got) != want {
			t.Errorf("data %s, want %s", got, want)
		}
	}
	var out struct {
		Big struct {
			Before json.RawMessage
			Events struct {
				Edges []struct{ Node struct{ Version int } }
			}
		}
		Small struct{ State json.RawMessage }
	}
	h.mustDo(`{ big: stream(id: "big") { before: state(at: {version: 0}) events { edges { node { version } } } }
		small: stream(id: "small") { state } }`, nil, &out)
	if string(out.Big.Before) != "null" || len(out.Big.Events.Edges) != 1 || len(out.Small.State) == 0 {
		t.Fatalf("after the refusal: %+v", out)
	}
	if head, err := h.store.Head(t.Context(), "big"); err != nil || head.Version != 1 {
		t.Fatalf("head %+v, %v", head, err)
	}
}
