package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// attack is one of the most expensive requests the default limits allow
// (or, for the refused ones, just do not): the body as sent and what the
// answer must be.
type attack struct {
	name  string
	query string
	vars  map[string]any
	// want is "ok" (data, no errors), or the extensions.code of the first
	// error (the request is refused, or its fields fail, as designed).
	want string
	// write: the request appends; it is measured alone, not repeated by the
	// attackers of the contention phase.
	write bool
}

// bigStream is the stream seeded with bigEvents events: full pages, and a
// long hash chain to verify. largeStream holds largeEvents events of 64 KiB
// (the size of the data set that broke last round): a page of them is
// bounded by bytes, not by first.
const (
	bigStream   = "abuse-big"
	bigEvents   = 10000
	largeStream = "abuse-large"
	largeEvents = 256
	largeBytes  = 64 << 10
)

// body renders the request with an operation name unique to n, as an
// attacker would, so that gqlgen's query cache (which skips parsing and
// validation of a document it has seen) does not hide the cost.
func (a attack) body(n int) []byte {
	q := a.query
	switch {
	case strings.HasPrefix(q, "{"):
		q = fmt.Sprintf("query Q%d ", n) + q
	case strings.HasPrefix(q, "mutation("):
		q = fmt.Sprintf("mutation M%d", n) + q[len("mutation"):]
	}
	b, err := json.Marshal(map[string]any{"query": q, "variables": a.vars})
	if err != nil {
		panic(err)
	}
	return b
}

type request struct {
	query string
	vars  map[string]any
}

func gql(query string, vars map[string]any) request { return request{query, vars} }

// times joins n copies of f(i) with spaces.
func times(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return strings.Join(parts, " ")
}

// attacks returns the catalogue. The defaults they are sized for: 300
// fields, depth 15, 30 aliases, 50 directives, 10,000 tokens, complexity
// 20,000, 8 MiB bodies, 4 MiB of data per append.
func attacks() []attack {
	var out []attack
	add := func(name, want string, r request) {
		out = append(out, attack{name: name, want: want, query: r.query, vars: r.vars})
	}

	// Validation's quadratic step: 300 fields of one response name.
	add("300 × __typename (most same-named fields)", "ok", gql("{ "+strings.Repeat("__typename ", 300)+"}", nil))
	// 150 pairwise conflicts with sub-selections: the most validation errors
	// (11,175, capped to 20 in the answer).
	add(`150 × stream(id:"sN"){id} (most validation errors)`, "GRAPHQL_VALIDATION_FAILED",
		gql("{ "+times(150, func(i int) string { return fmt.Sprintf(`stream(id:"s%d"){id}`, i) })+" }", nil))
	// The most execution errors: 150 fields that each fail.
	add(`150 × stream(id:"bad id!"){id} (most field errors)`, "BAD_USER_INPUT",
		gql("{ "+strings.Repeat(`stream(id:"bad id!"){id} `, 150)+"}", nil))
	// The most data: aliases of full pages up to the complexity limit (a
	// page costs 1 + 1000 × (its fields + 5)).
	add("2 × events(first:1000){edges{node{id}}} (most aliases of pages)", "ok",
		gql("{ "+times(2, func(i int) string { return fmt.Sprintf("a%d: events(first:1000){edges{node{id}}}", i) })+" }", nil))
	add("stream events(first:1000) with data (largest answer)", "ok",
		gql(`{ stream(id:"`+bigStream+`"){ events(first:1000){edges{node{id type data recordedAt}}} } }`, nil))
	// Pages of large events stop at 4 MiB of data (eventstore.MaxPageBytes).
	add("2 × events(first:1000) with data, events of 64 KiB (largest answers)", "ok",
		gql("{ "+times(2, func(i int) string {
			return fmt.Sprintf(`a%d: stream(id:"%s"){ events(first:1000){edges{node{id data}}} }`, i, largeStream)
		})+" }", nil))
	add("3 × events(first:1000) (refused: complexity)", "BAD_USER_INPUT",
		gql("{ "+times(3, func(i int) string { return fmt.Sprintf("a%d: events(first:1000){edges{node{id}}}", i) })+" }", nil))
	// Per-stream work: verify reads the whole stream from the store, so its
	// complexity allows one per operation; state folds the stream (from the
	// last snapshot).
	add("verify of a 10,000-event stream (one per operation)", "ok",
		gql(`{ stream(id:"`+bigStream+`"){verify{ok checkedEvents}} }`, nil))
	add("2 × verify (refused: complexity)", "BAD_USER_INPUT",
		gql(`{ a: stream(id:"`+bigStream+`"){verify{ok}} b: stream(id:"`+bigStream+`"){verify{ok}} }`, nil))
	add("30 × state of a 10,000-event stream", "ok",
		gql("{ "+times(30, func(i int) string { return fmt.Sprintf(`s%d: stream(id:"%s"){state}`, i, bigStream) })+" }", nil))
	// The deepest: introspection's ofType chain, 15 levels.
	add("depth 15 (__type ofType chain)", "ok",
		gql(`{ __type(name:"Event"){ fields { type `+strings.Repeat("{ ofType ", 11)+"{ name }"+strings.Repeat(" }", 11)+" } } }", nil))
	// The most tokens: a list argument of about 10,000 tokens.
	add("9,990 tokens (a list argument)", "ok",
		gql(`{ events(first: 1, types: [`+times(4985, func(i int) string { return fmt.Sprintf(`"t%d"`, i) })+`]){edges{cursor}} }`, nil))
	// The largest body: 8 MiB, all of it a variable the operation does not
	// declare (and so ignores).
	add("8 MiB body", "ok", gql(`{ headPosition }`, map[string]any{"pad": strings.Repeat("x", 8<<20-200)}))
	// The largest append: one event of 4 MiB of data, and one of 3 MiB. An
	// append allocates its data about four times over (the store's copy and
	// three copies in the MongoDB driver; the body is read into a reused
	// buffer), so 4 MiB is just over the 16 MiB target.
	for _, mib := range []int{4, 3} {
		r := gql(`mutation($e: [NewEvent!]!) { appendToStream(streamId: "abuse-append", events: $e) { lastPosition } }`,
			map[string]any{"e": []any{map[string]any{"type": "Big", "data": map[string]any{"pad": strings.Repeat("x", mib<<20-1024)}}}})
		out = append(out, attack{name: fmt.Sprintf("append of %d MiB", mib), want: "ok", write: true, query: r.query, vars: r.vars})
	}
	// The most events: 1,000 (the most an append holds) of 4 KiB of data
	// each, together at the 4 MiB limit. Without ids, so that every request
	// writes (the same ids again would be an idempotent retry).
	evs := make([]any, 1000)
	for i := range evs {
		evs[i] = map[string]any{"type": "Many", "data": map[string]any{"n": i, "pad": strings.Repeat("y", 4<<10-100)}}
	}
	r := gql(`mutation($e: [NewEvent!]!) { appendToStream(streamId: "abuse-many", events: $e) { lastPosition } }`, map[string]any{"e": evs})
	out = append(out, attack{name: "append of 1,000 events of 4 KiB", want: "ok", write: true, query: r.query, vars: r.vars})
	// Refused before validation: the hostile test's B1 and B2.
	add("refused: 1,105 × stream(id){id} (B1)", "BAD_USER_INPUT",
		gql("{ "+times(1105, func(i int) string { return fmt.Sprintf(`stream(id:"s%d"){id}`, i) })+" }", nil))
	add("refused: 9,000 × __typename (B2)", "BAD_USER_INPUT", gql("{ "+strings.Repeat("__typename ", 9000)+"}", nil))
	return out
}
