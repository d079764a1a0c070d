package graph

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"golang.org/x/sync/semaphore"

	"github.com/hindsight-dev/hindsight/auth"
)

// TestDocLimits pins the linear count: fields (fragments counted where
// spread, unspread ones once), depth, aliases and directives over the whole
// document, every operation included.
func TestDocLimits(t *testing.T) {
	l := docLimits{maxTokens: 10000, maxFields: 10, maxDepth: 3, maxAliases: 2, maxDirectives: 2}
	for _, c := range []struct {
		name, doc, reason string
	}{
		{"within", `{ a b c { d } }`, ""},
		{"11 fields", `{ ` + strings.Repeat("a ", 11) + `}`, ReasonMaxFields},
		{"a fragment spread 3 times counts 3 times", `fragment F on Query { a b c d } { ...F ...F ...F }`, ReasonMaxFields},
		{"a fragment never spread counts once", `fragment F on Query { a b c d e f } { a b c d e }`, ReasonMaxFields},
		{"fields of every operation count", `query A { a b c d e f } query B { a b c d e }`, ReasonMaxFields},
		{"depth 4", `{ a { b { c { d } } } }`, ReasonMaxDepth},
		{"depth through a fragment", `fragment F on T { c { d } } { a { b { ...F } } }`, ReasonMaxDepth},
		{"3 aliases", `{ x: a y: a z: a }`, ReasonMaxAliases},
		{"an alias equal to the name is none", `{ a: a b: b x: c y: d }`, ""},
		{"3 directives", `query @d { a @d b @d }`, ReasonMaxDirectives},
		{"a fragment cycle terminates", `fragment F on Q { ...G } fragment G on Q { ...F } { ...F }`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, err := parser.ParseQuery(&ast.Source{Input: c.doc})
			if err != nil {
				t.Fatal(err)
			}
			_, e := l.check(doc)
			got := ""
			if e != nil {
				got = reasonOf(e)
			}
			if got != c.reason {
				t.Fatalf("reason %q, want %q (%v)", got, c.reason, e)
			}
		})
	}
}

// TestCapErrors: at most MaxErrors errors and one summary that counts the
// rest, including those a capped validation left out already.
func TestCapErrors(t *testing.T) {
	list := func(n int) gqlerror.List {
		var l gqlerror.List
		for i := 0; i < n; i++ {
			l = append(l, &gqlerror.Error{Message: fmt.Sprint(i)})
		}
		return l
	}
	if got := capErrors(list(MaxErrors)); len(got) != MaxErrors {
		t.Fatalf("%d errors became %d", MaxErrors, len(got))
	}
	got := capErrors(list(1000))
	if len(got) != MaxErrors+1 || got[MaxErrors].Extensions["omitted"] != 1000-MaxErrors || got[MaxErrors].Extensions["code"] != CodeTooManyErrors {
		t.Fatalf("1,000 errors: %d, last %+v", len(got), got[len(got)-1])
	}
	withSummary := append(list(MaxErrors), tooManyErrors(500))
	withSummary = append(withSummary, list(3)...)
	got = capErrors(withSummary)
	if len(got) != MaxErrors+1 || got[MaxErrors].Extensions["omitted"] != 503 {
		t.Fatalf("a summary and 3 more: last %+v", got[len(got)-1])
	}
}

// TestQuote: at most 64 characters of client input, Unicode shown as
// itself, the rest marked.
func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                          `"abc"`,
		"ストリーム":                        `"ストリーム"`,
		strings.Repeat("é", 64):        `"` + strings.Repeat("é", 64) + `"`,
		strings.Repeat("é", 65):        `"` + strings.Repeat("é", 64) + `"…`,
		"line\nbreak":                  `"line\nbreak"`,
		strings.Repeat("x", 10<<10):    `"` + strings.Repeat("x", 64) + `"…`,
		"\"" + strings.Repeat("q", 70): `"\"` + strings.Repeat("q", 63) + `"…`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%.20q) = %.80q, want %.80q", in, got, want)
		}
	}
	msg := fmt.Sprintf("event 0: id %q is not a UUID; stream %q", strings.Repeat("a", 10000), "s")
	if got, want := shortenQuotes(msg), `event 0: id "`+strings.Repeat("a", 64)+`"… is not a UUID; stream "s"`; got != want {
		t.Errorf("shortenQuotes: %q", got)
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`1`:                      0,
		`{"a": [1, {"b": 2}]}`:   3,
		`{"a": "[[[[{{{"}`:       1,
		`{"a": "\"[[["}`:         1,
		`["a\\", ["b"]]`:         2, // an escaped backslash ends before the quote
		`["\\\"[", ["b"]]`:       2, // a backslash, then an escaped quote
		`{"a": "[`:               1, // unterminated
		`"[" [[ "]"`:             2,
		`[[[]], []]`:             3,
		strings.Repeat("[", 100): 100,
	} {
		if got := jsonDepth([]byte(in)); got != want {
			t.Errorf("jsonDepth(%.30q) = %d, want %d", in, got, want)
		}
	}
}

func TestResponseMedia(t *testing.T) {
	for accept, want := range map[string]string{
		"":                                  mediaJSON,
		"*/*":                               mediaJSON,
		"application/graphql-response+json": mediaGraphQLResponse,
		"application/graphql-response+json, application/json;q=0.9": mediaGraphQLResponse,
		"application/json, application/graphql-response+json":       mediaJSON,
		"text/html": mediaJSON,
	} {
		if got := responseMedia(accept); got != want {
			t.Errorf("Accept %q: %s, want %s", accept, got, want)
		}
	}
}

// TestHostAllowed: under auth none only loopback names and the listed
// hosts, with any port; with credentials required, every host.
func TestHostAllowed(t *testing.T) {
	e := &Endpoint{cfg: EndpointConfig{Auth: auth.None{}, AllowedHosts: []string{"hindsight.internal"}}}
	for host, want := range map[string]bool{
		"localhost": true, "localhost:8080": true, "LOCALHOST.:1": true, "127.0.0.1:80": true, "[::1]:8080": true, "[::1]": true,
		"hindsight.internal:8080": true,
		"attacker.example:8080":   false, "127.0.0.2": false, "localhost.attacker.example": false, "": false, "10.0.0.1": false,
	} {
		if got := e.hostAllowed(&http.Request{Host: host}); got != want {
			t.Errorf("Host %q: %v, want %v", host, got, want)
		}
	}
	keys, _ := auth.ParseAPIKeys(strings.NewReader("k-0123456789abcdef reader\n"))
	e.cfg.Auth = keys
	if !e.hostAllowed(&http.Request{Host: "attacker.example"}) {
		t.Error("with credentials required, a host was refused")
	}
}

// TestHideUnnamed: without introspection, a message names only what the
// document named.
func TestHideUnnamed(t *testing.T) {
	doc := `query($x: OrderStatu) { stream { foo } orders(status: PAI) { id } }`
	for msg, want := range map[string]string{
		`Field "stream" argument "id" of type "String!" is required, but it was not provided.`: `Field "stream" argument "id" of type (hidden) is required, but it was not provided.`,
		`Cannot query field "foo" on type "Stream".`:                                           `Cannot query field "foo" on type (hidden).`,
		`Value "PAI" does not exist in "OrderStatus" enum.`:                                    `Value "PAI" does not exist in (hidden) enum.`,
		`Unknown type "OrderStatu".`:                                                           `Unknown type "OrderStatu".`,
		`Variable "$x" is never used.`:                                                         `Variable "$x" is never used.`,
		`Unknown argument "i" on field "Query.stream".`:                                        `Unknown argument (hidden) on field (hidden).`,
	} {
		if got := hideUnnamed(msg, doc); got != want {
			t.Errorf("%s\n got %s\nwant %s", msg, got, want)
		}
	}
}

// TestHeavyLane: a ticket enters the lane once, at most the lane's size
// are in it, one that gives up waiting goes on outside it, and one whose
// context ended gives its place up and never enters again.
func TestHeavyLane(t *testing.T) {
	lane := &heavyLane{sem: semaphore.NewWeighted(1), size: 1}
	first := lane.ticket(context.Background(), nil)
	first.enter(context.Background())
	first.enter(context.Background()) // a second heavy part of the same operation
	if !first.isHeld() {
		t.Fatal("the first operation is not in the lane")
	}
	waiting, cancel := context.WithCancel(context.Background())
	second := lane.ticket(waiting, nil)
	entered := make(chan struct{})
	go func() { second.enter(waiting); close(entered) }()
	for lane.waiting.Load() != 1 {
		runtime.Gosched()
	}
	cancel()
	<-entered
	if second.isHeld() {
		t.Fatal("an operation that gave up is in the lane")
	}
	first.leave()
	ended, end := context.WithCancel(context.Background())
	third := lane.ticket(ended, nil)
	third.enter(ended)
	if !third.isHeld() {
		t.Fatal("the lane was not freed")
	}
	end() // the operation's context ends without it leaving: the lane is freed all the same
	for !lane.sem.TryAcquire(1) {
		runtime.Gosched()
	}
	lane.sem.Release(1)
	third.enter(context.Background())
	if third.isHeld() {
		t.Fatal("a ticket whose context ended entered again")
	}
}
