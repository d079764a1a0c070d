package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// Tests of the declarative projections' GraphQL surface (issue 19): who may
// define and read, the codes of faults and rejected definitions, and the
// subscription over every transport.

const defineDoc = `mutation($d: ProjectionDefinitionInput!, $v: Int) {
	defineProjection(definition: $d, expectedVersion: $v) { definition { name version status } dryRun { events partitions { key state } } }
}`

func defineVia(h *harness, key string, def map[string]any) (int, []gqlError, json.RawMessage) {
	var header []string
	if key != "" {
		header = bearer(key)
	}
	return h.post(mustJSON(map[string]any{"query": defineDoc, "variables": map[string]any{"d": def}}), header...)
}

// TestProjectionAccess: only admins define (and write definition streams);
// a reader scoped to cart- reads the stream-keyed partitions of its streams
// only, and a jq-keyed projection only if its prefixes cover the
// projection's streamPrefix.
func TestProjectionAccess(t *testing.T) {
	h := newHarness(t, withAPIKeys(t))
	admin := "admin-all-00000000000000000"
	h.appendEvents("cart-1", "Added", 1, 2)
	h.appendEvents("secret-1", "Added", 1, 1)
	reducer := `.state.n += 1 | .state`
	for _, key := range []string{"reader-all-0000000000000000", "writer-all-0000000000000000"} {
		_, errs, _ := defineVia(h, key, map[string]any{"name": "x", "reducer": reducer})
		wantCode(t, errs, "FORBIDDEN")
	}
	_, errs, _ := h.post(mustJSON(map[string]any{"query": `mutation { appendToStream(streamId: "hindsight.projections.x", events: [{type: "ProjectionDefined", data: {}}]) { lastPosition } }`}),
		bearer("writer-all-0000000000000000")...)
	wantCode(t, errs, "FORBIDDEN")
	for _, def := range []map[string]any{
		{"name": "by-stream", "reducer": reducer},
		{"name": "cart-customers", "streamPrefix": "cart-", "partitionBy": `"k" + (.data.i|tostring)`, "reducer": reducer},
		{"name": "all-customers", "partitionBy": `"k" + (.data.i|tostring)`, "reducer": reducer},
	} {
		if _, errs, _ := defineVia(h, admin, def); len(errs) > 0 {
			t.Fatalf("define %v: %+v", def["name"], errs)
		}
	}
	scoped := "reader-cart-000000000000000"
	for _, c := range []struct {
		query, want string // want: a code, or the data
	}{
		{`{ projectionState(name: "by-stream", key: "cart-1") { version } }`, `{"projectionState":{"version":2}}`},
		{`{ projectionState(name: "by-stream", key: "secret-1") { version } }`, "FORBIDDEN"},
		{`{ projectionPartitions(name: "by-stream") { totalCount edges { node { key } } } }`, `{"projectionPartitions":{"totalCount":1,"edges":[{"node":{"key":"cart-1"}}]}}`},
		{`{ projectionCount(name: "by-stream") }`, `{"projectionCount":1}`},
		{`{ projectionState(name: "cart-customers", key: "k1") { version } }`, `{"projectionState":{"version":1}}`},
		{`{ projectionState(name: "all-customers", key: "k1") { version } }`, "FORBIDDEN"},
		{`{ projectionPartitions(name: "all-customers") { totalCount } }`, "FORBIDDEN"},
		{`{ projectionCount(name: "all-customers") }`, "FORBIDDEN"},
	} {
		status, errs, data := h.post(mustJSON(map[string]any{"query": c.query}), bearer(scoped)...)
		if c.want[0] != '{' {
			wantCode(t, errs, c.want)
			continue
		}
		if status != 200 || len(errs) > 0 || string(data) != c.want {
			t.Fatalf("%s: %d %+v %s; want %s", c.query, status, errs, data, c.want)
		}
	}
	// A filter that fails, or runs out of time, is the caller's mistake.
	for _, filter := range []string{`error("no")`, `last(range(1e12))`, `.n |`} {
		_, errs, _ := h.post(mustJSON(map[string]any{"query": `query($f: String) { projectionCount(name: "by-stream", filter: $f) }`,
			"variables": map[string]any{"f": filter}}), bearer(scoped)...)
		wantCode(t, errs, "BAD_USER_INPUT")
	}
	// A scoped subscription to every partition gets the allowed ones only;
	// to a jq-keyed projection it is refused.
	hc := &http.Client{Transport: bearerTransport{scoped}}
	sub := subscribeSSE(t, hc, h.srv.URL, `subscription { projectionChanged(name: "by-stream", afterPosition: "0") { key version } }`, nil)
	h.appendEvents("secret-1", "Added", 2, 1)
	h.appendEvents("cart-1", "Added", 3, 1)
	var keys []string
	for len(keys) < 3 {
		r := sub.next(15 * time.Second)
		if r.kind != "next" || len(r.errors) > 0 {
			t.Fatalf("scoped subscription: %s %+v", r.kind, r.errors)
		}
		var m struct {
			ProjectionChanged struct {
				Key     string
				Version int
			}
		}
		_ = json.Unmarshal(r.data, &m)
		keys = append(keys, fmt.Sprintf("%s v%d", m.ProjectionChanged.Key, m.ProjectionChanged.Version))
	}
	if fmt.Sprint(keys) != "[cart-1 v1 cart-1 v2 cart-1 v3]" {
		t.Fatalf("scoped subscription delivered %v", keys)
	}
	refused := subscribeSSE(t, hc, h.srv.URL, `subscription { projectionChanged(name: "all-customers") { key } }`, nil)
	if r := refused.next(15 * time.Second); len(r.errors) == 0 || r.errors[0].code() != "FORBIDDEN" {
		t.Fatalf("a scoped subscription to a jq-keyed projection: %s %+v", r.kind, r.errors)
	}
	// Scoped readers see the definitions they can read partitions of.
	_, errs, data := h.post(mustJSON(map[string]any{"query": `{ definedProjections { name } }`}), bearer(scoped)...)
	if len(errs) > 0 || string(data) != `{"definedProjections":[{"name":"by-stream"},{"name":"cart-customers"}]}` {
		t.Fatalf("scoped definitions: %+v %s", errs, data)
	}
	// Unscoped readers see everything.
	_, errs, data = h.post(mustJSON(map[string]any{"query": `{ projectionCount(name: "all-customers") }`}), bearer("reader-all-0000000000000000")...)
	if len(errs) > 0 || string(data) != `{"projectionCount":3}` {
		t.Fatalf("unscoped count: %+v %s", errs, data)
	}
}

// TestProjectionFaultsAndRejections: definitions that do not compile or
// fail their dry run are BAD_USER_INPUT and record nothing; a reducer that
// fails later faults its projection with PROJECTION_FAULTED (and the place in
// extensions), shows in diagnostics, and leaves earlier points readable.
func TestProjectionFaultsAndRejections(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("f-1", "T", 1, 1) // data {"i": 1}
	for _, def := range []map[string]any{
		{"name": "bad-syntax", "reducer": `.state |`},
		{"name": "bad-key", "partitionBy": `.data.i |`, "reducer": `.state`},
		{"name": "bad-dry-run", "streamPrefix": "f-", "reducer": `error("no")`},
		{"name": "Bad Name", "reducer": `.state`},
		{"name": "bad-initial", "initialState": []int{1}, "reducer": `.state`},
	} {
		_, errs, _ := defineVia(h, "", def)
		wantCode(t, errs, "BAD_USER_INPUT")
	}
	var list struct{ DefinedProjections []struct{ Name string } }
	h.mustDo(`{ definedProjections { name } }`, nil, &list)
	if len(list.DefinedProjections) != 0 {
		t.Fatalf("rejected definitions were recorded: %+v", list)
	}
	if _, errs, _ := defineVia(h, "", map[string]any{"name": "boom", "streamPrefix": "f-",
		"reducer": `if .event.data.i == 2 then error("two") else .state.n += 1 | .state end`}); len(errs) > 0 {
		t.Fatal(errs)
	}
	bad := h.appendEvents("f-1", "T", 2, 1)[0]
	_, errs, _ := h.post(mustJSON(map[string]any{"query": `{ projectionState(name: "boom", key: "f-1") { state } }`}))
	e := wantCode(t, errs, "PROJECTION_FAULTED")
	if e.Extensions["kind"] != "RUNTIME_ERROR" || e.Extensions["position"] != fmt.Sprint(bad.Position) || e.Extensions["streamId"] != "f-1" ||
		e.Extensions["projection"] != "boom" {
		t.Fatalf("fault extensions %+v, want the event at %d", e.Extensions, bad.Position)
	}
	var before struct {
		ProjectionState struct{ State json.RawMessage }
	}
	h.mustDo(`query($p: Position) { projectionState(name: "boom", key: "f-1", at: {position: $p}) { state } }`,
		map[string]any{"p": fmt.Sprint(bad.Position - 1)}, &before)
	if string(before.ProjectionState.State) != `{"n":1}` {
		t.Fatalf("state before the fault: %s", before.ProjectionState.State)
	}
	var diag struct {
		Diagnostics struct {
			DeclaredProjections []struct {
				Name   string
				Status string
				Fault  struct{ Kind, Position string }
			}
		}
	}
	h.mustDo(`{ diagnostics { declaredProjections { name status fault { kind position } } } }`, nil, &diag)
	d := diag.Diagnostics.DeclaredProjections
	if len(d) != 1 || d[0].Status != "FAULTED" || d[0].Fault.Kind != "RUNTIME_ERROR" || d[0].Fault.Position != fmt.Sprint(bad.Position) {
		t.Fatalf("diagnostics: %+v", d)
	}
	// A fixed version takes over and answers again.
	if _, errs, _ := defineVia(h, "", map[string]any{"name": "boom", "streamPrefix": "f-", "reducer": `.state.n += 1 | .state`}); len(errs) > 0 {
		t.Fatal(errs)
	}
	var fixed struct {
		ProjectionState struct{ State json.RawMessage }
	}
	eventually(t, 10*time.Second, "the fixed version answers", func() bool {
		data, errs := h.do(`{ projectionState(name: "boom", key: "f-1") { state } }`, nil)
		return len(errs) == 0 && json.Unmarshal(data, &fixed) == nil && string(fixed.ProjectionState.State) == `{"n":2}`
	})
}

// TestProjectionChangedSubscription replays a partition's states and every
// partition's, then continues live, over every transport.
func TestProjectionChangedSubscription(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			h := newHarness(t)
			h.appendEvents("s-1", "T", 1, 2)
			h.appendEvents("s-2", "T", 1, 1)
			if _, errs, _ := defineVia(h, "", map[string]any{"name": "sums", "streamPrefix": "s-", "reducer": `.state.sum += .event.data.i | .state`}); len(errs) > 0 {
				t.Fatal(errs)
			}
			const doc = `subscription($k: String) { projectionChanged(name: "sums", key: $k, afterPosition: "0") { key version position state } }`
			one, _ := tr.subscribe(t, h, doc, map[string]any{"k": "s-1"})
			all, _ := tr.subscribe(t, h, doc, map[string]any{"k": nil})
			live := h.appendEvents("s-1", "T", 3, 1)[0]
			type change struct {
				Key      string
				Version  int64
				Position string
				State    json.RawMessage
			}
			read := func(s subscriber, n int) []string {
				var out []string
				for len(out) < n {
					r := s.next(15 * time.Second)
					if r.kind != "next" || len(r.errors) > 0 {
						t.Fatalf("got %s %+v (%v)", r.kind, r.errors, r.closeErr)
					}
					var m struct{ ProjectionChanged change }
					if err := json.Unmarshal(r.data, &m); err != nil {
						t.Fatal(err)
					}
					c := m.ProjectionChanged
					out = append(out, fmt.Sprintf("%s v%d @%s %s", c.Key, c.Version, c.Position, c.State))
				}
				return out
			}
			livePos := fmt.Sprint(live.Position)
			if got, want := read(one, 3), []string{`s-1 v1 @1 {"sum":1}`, `s-1 v2 @2 {"sum":3}`, `s-1 v3 @` + livePos + ` {"sum":6}`}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("one partition: %v, want %v", got, want)
			}
			if got, want := read(all, 4), []string{`s-1 v1 @1 {"sum":1}`, `s-1 v2 @2 {"sum":3}`, `s-2 v1 @3 {"sum":1}`, `s-1 v3 @` + livePos + ` {"sum":6}`}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("all partitions: %v, want %v", got, want)
			}
		})
	}
}

// TestInvalidRecordedDefinition: a definition that an admin wrote with
// appendToStream, unchecked, is listed as FAULTED (INVALID_DEFINITION) and
// queries of it say so.
func TestInvalidRecordedDefinition(t *testing.T) {
	h := newHarness(t)
	h.mustDo(`mutation { appendToStream(streamId: "hindsight.projections.raw", events: [{type: "ProjectionDefined", data: {name: "raw", reducer: ".state |"}}]) { lastPosition } }`, nil, nil)
	var out struct {
		Projection struct {
			Versions []struct {
				Status string
				Fault  struct{ Kind string }
			}
		}
	}
	eventually(t, 10*time.Second, "the definition taken in", func() bool {
		data, errs := h.do(`{ projection(name: "raw") { versions { status eventTypes initialState fault { kind } } } }`, nil)
		return len(errs) == 0 && json.Unmarshal(data, &out) == nil && len(out.Projection.Versions) == 1
	})
	if v := out.Projection.Versions[0]; v.Status != "FAULTED" || v.Fault.Kind != "INVALID_DEFINITION" {
		t.Fatalf("version: %+v", v)
	}
	_, errs := h.do(`{ projectionCount(name: "raw") }`, nil)
	wantCode(t, errs, "PROJECTION_FAULTED")
}
