package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestStrictBuiltinScalars sends variables of the wrong type for each
// built-in scalar, at the top level, in a list and in an input object. Each
// is a request error (GraphQL §6.1.2): status 200 under application/json (the
// GraphQL-over-HTTP spec's SHOULD), BAD_USER_INPUT, the path
// of the variable, and nothing runs, so nothing is appended. Values of the
// right type, including the spec's allowed coercions (an Int for an ID, a
// single value for a list), still work.
func TestStrictBuiltinScalars(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("typed-1", "Seen", 0, 1)
	var order struct{ CreateOrder struct{ ID string } }
	h.mustDo(`mutation { createOrder(customerId: "c") { id } }`, nil, &order)
	draft := order.CreateOrder.ID
	head := func() string {
		var d struct{ HeadPosition string }
		h.mustDo(`{ headPosition }`, nil, &d)
		return d.HeadPosition
	}
	headBefore := head()

	const (
		appendM = `mutation($s: String!, $e: [NewEvent!]!, $v: Int) {
			appendToStream(streamId: $s, events: $e, expectedVersion: $v) { lastPosition } }`
		createM = `mutation($c: String!, $items: [OrderItemInput!], $id: ID) {
			createOrder(customerId: $c, items: $items, orderId: $id) { id } }`
		addItemM = `mutation($id: ID!, $item: OrderItemInput!) {
			addOrderItem(orderId: $id, item: $item) { id } }`
		eventsQ = `query($n: Int, $types: [String!], $p: String) {
			events(first: $n, types: $types, streamPrefix: $p) { pageInfo { hasNextPage } } }`
		streamQ = `query($b: Boolean, $after: Int) {
			stream(id: "typed-1") { events(backward: $b, afterVersion: $after) { pageInfo { hasNextPage } } } }`
	)
	// vars are raw JSON, so that numbers reach the server exactly as written.
	item := func(q, p string) string { return `{"sku": "a", "quantity": ` + q + `, "unitPriceCents": ` + p + `}` }
	bad := []struct {
		name, query, vars string
		path              string // of the error, joined with "."
	}{
		{"number for String", appendM, `{"s": 5, "e": [{"type": "T", "data": 1}]}`, "variable.s"},
		{"fraction for String", appendM, `{"s": 1.5, "e": [{"type": "T", "data": 1}]}`, "variable.s"},
		{"Boolean for String", appendM, `{"s": true, "e": [{"type": "T", "data": 1}]}`, "variable.s"},
		{"number for String in an input object", appendM, `{"s": "typed-x", "e": [{"type": 5, "data": 1}]}`, "variable.e.0.type"},
		{"number for String in the second element", appendM, `{"s": "typed-x", "e": [{"type": "T", "data": 1}, {"type": 7, "data": 1}]}`, "variable.e.1.type"},
		{"number for String! in a list", eventsQ, `{"types": ["T", 5]}`, "variable.types.1"},
		// gqlparser makes the single value a list of one before this check.
		{"number for a single String! standing for a list", eventsQ, `{"types": 5}`, "variable.types.0"},
		{"number for an optional String", eventsQ, `{"p": 5}`, "variable.p"},
		{"number for String nested in a mutation's list", createM, `{"c": "c", "items": [{"sku": 5, "quantity": 1, "unitPriceCents": 1}]}`, "variable.items.0.sku"},
		{"numeric string for Int", appendM, `{"s": "typed-x", "e": [{"type": "T", "data": 1}], "v": "0"}`, "variable.v"},
		{"fraction for Int", appendM, `{"s": "typed-x", "e": [{"type": "T", "data": 1}], "v": 1.5}`, "variable.v"},
		{"exponent for Int", appendM, `{"s": "typed-x", "e": [{"type": "T", "data": 1}], "v": 1e3}`, "variable.v"},
		{"Int over 32 bits", appendM, `{"s": "typed-x", "e": [{"type": "T", "data": 1}], "v": 2147483648}`, "variable.v"},
		{"Int under 32 bits", eventsQ, `{"n": -2147483649}`, "variable.n"},
		{"Boolean for Int", eventsQ, `{"n": true}`, "variable.n"},
		{"numeric string for Int in an input object", createM, `{"c": "c", "items": [` + item(`"2"`, "500") + `]}`, "variable.items.0.quantity"},
		{"fraction for Int in an input object", addItemM, `{"id": "` + draft + `", "item": ` + item("2", "1.5") + `}`, "variable.item.unitPriceCents"},
		{"Int over 32 bits in an input object", addItemM, `{"id": "` + draft + `", "item": ` + item("2", "4294967296") + `}`, "variable.item.unitPriceCents"},
		{"fraction for ID", createM, `{"c": "c", "id": 1.5}`, "variable.id"},
		{"Boolean for ID", createM, `{"c": "c", "id": true}`, "variable.id"},
		{"object for ID", addItemM, `{"id": {"x": 1}, "item": ` + item("1", "1") + `}`, "variable.id"},
		{"string for Boolean", streamQ, `{"b": "true"}`, "variable.b"},
		{"number for Boolean", streamQ, `{"b": 1}`, "variable.b"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			status, errs, data := h.post(`{"query": ` + quote(c.query) + `, "variables": ` + c.vars + `}`)
			e := wantCode(t, errs, graph.CodeBadUserInput)
			if status != http.StatusOK {
				t.Errorf("status %d, want 200", status)
			}
			if got := joinPath(e.Path); got != c.path {
				t.Errorf("path %q, want %q (%q)", got, c.path, e.Message)
			}
			if len(data) > 0 {
				t.Errorf("the operation ran, or the refusal has a data entry: data %s", data)
			}
			for _, leak := range []string{"json.Number", "float64", "int64", "reflect", "graphql.", ".go:"} {
				if strings.Contains(e.Message, leak) {
					t.Errorf("the message leaks %q: %q", leak, e.Message)
				}
			}
		})
	}
	t.Run("nothing was written", func(t *testing.T) {
		if got := head(); got != headBefore {
			t.Errorf("headPosition %s, want %s", got, headBefore)
		}
		for _, s := range []string{"typed-x", "5", "1.5", "true"} {
			if _, err := h.store.Head(context.Background(), s); err == nil {
				t.Errorf("stream %q exists", s)
			}
		}
		var o struct {
			Order struct{ Items []json.RawMessage }
		}
		h.mustDo(`query($id: ID!) { order(id: $id) { items { sku } } }`, map[string]any{"id": draft}, &o)
		if len(o.Order.Items) != 0 {
			t.Errorf("the draft order got items: %s", o.Order.Items)
		}
	})

	good := []struct {
		name, query, vars string
		want              string // in the data
	}{
		{"String, Int and a nested String", appendM, `{"s": "typed-ok", "e": [{"type": "T", "data": 1}], "v": null}`, `"lastPosition"`},
		{"Int as expected version", appendM, `{"s": "typed-ok", "e": [{"type": "T", "data": 2}], "v": 1}`, `"lastPosition"`},
		{"a single value for a list", appendM, `{"s": "typed-ok", "e": {"type": "T", "data": 3}}`, `"lastPosition"`},
		{"Int at the 32-bit bound", streamQ, `{"after": 2147483647}`, `"hasNextPage"`},
		{"Int, String and [String!]", eventsQ, `{"n": 5, "types": ["T"], "p": "typed-"}`, `"hasNextPage"`},
		{"a single String for [String!]", eventsQ, `{"n": 1, "types": "T"}`, `"hasNextPage"`},
		{"Boolean", streamQ, `{"b": true}`, `"hasNextPage"`},
		{"null for an optional Boolean", streamQ, `{"b": null}`, `"hasNextPage"`},
		{"an Int for an ID", createM, `{"c": "c", "id": 4242, "items": [` + item("2", "500") + `]}`, `"4242"`},
		{"a string for an ID", createM, `{"c": "c", "id": "order-typed"}`, `"order-typed"`},
		{"Ints in an input object", addItemM, `{"id": "` + draft + `", "item": ` + item("3", "250") + `}`, draft},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			status, errs, data := h.post(`{"query": ` + quote(c.query) + `, "variables": ` + c.vars + `}`)
			if status != http.StatusOK || len(errs) > 0 {
				t.Fatalf("status %d, errors %+v", status, errs)
			}
			if !strings.Contains(string(data), c.want) {
				t.Errorf("data %s, want %s in it", data, c.want)
			}
		})
	}
}

// TestStrictScalarsOverSSE checks the streaming transport: a wrong-typed
// variable refuses the subscription before any stream opens, with a coded
// error and the status of a refusal (400, as TestSSERefusals).
func TestStrictScalarsOverSSE(t *testing.T) {
	h := newHarness(t)
	body, _ := json.Marshal(map[string]any{"query": `subscription($p: String) { events(afterPosition: "0", streamPrefix: $p) { position } }`,
		"variables": map[string]any{"p": 5}})
	r := h.postRaw(string(body), "Accept", "text/event-stream")
	if r.status != http.StatusBadRequest || r.hasData {
		t.Fatalf("status %d, body %.300s; want 400 without data", r.status, r.body)
	}
	if e := wantCode(t, r.errs, graph.CodeBadUserInput); joinPath(e.Path) != "variable.p" {
		t.Errorf("path %v, want variable.p", e.Path)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func joinPath(p []any) string {
	parts := make([]string, len(p))
	for i, el := range p {
		parts[i] = fmt.Sprint(el)
	}
	return strings.Join(parts, ".")
}
