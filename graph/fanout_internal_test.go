package graph

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hindsight-dev/hindsight/auth"
)

// TestShapeKey: subscribers share encodings only when the operation, the
// variables its selection uses and the principal's scope are the same;
// variables that only choose events (arguments of the root field) do not
// split them.
func TestShapeKey(t *testing.T) {
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		type Query { x: Int }
		type Subscription { events(afterPosition: String, types: [String!]): Event! }
		type Event { position: String! data(path: String): String }`})
	const q = `subscription($p: String, $t: [String!], $d: Boolean! = false, $path: String) {
		events(afterPosition: $p, types: $t) { position data(path: $path) @include(if: $d) ...F }
	}
	fragment F on Event { position @skip(if: $d) }`
	reader := &auth.Principal{Subject: "a", Role: auth.Reader}
	keyOf := func(vars map[string]any, p *auth.Principal) string {
		doc, errs := gqlparser.LoadQuery(schema, q)
		if errs != nil {
			t.Fatal(errs)
		}
		oc := &graphql.OperationContext{RawQuery: q, Doc: doc, Operation: doc.Operations[0], Variables: vars}
		k, ok := shapeKey(graphql.WithOperationContext(context.Background(), oc), p)
		if !ok {
			t.Fatal("not shareable")
		}
		return k
	}
	base := keyOf(map[string]any{"p": "1", "d": false}, reader)
	for _, c := range []struct {
		name  string
		vars  map[string]any
		p     *auth.Principal
		share bool
	}{
		{"same", map[string]any{"p": "1", "d": false}, reader, true},
		{"another start", map[string]any{"p": "7", "d": false}, reader, true},
		{"another filter", map[string]any{"p": "1", "t": []any{"B"}, "d": false}, reader, true},
		{"another subject, same scope", map[string]any{"p": "1", "d": false}, &auth.Principal{Subject: "b", Role: auth.Reader}, true},
		{"a directive variable", map[string]any{"p": "1", "d": true}, reader, false},
		{"a field argument", map[string]any{"p": "1", "d": false, "path": "x"}, reader, false},
		{"another role", map[string]any{"p": "1", "d": false}, &auth.Principal{Subject: "a", Role: auth.Admin}, false},
		{"a scope", map[string]any{"p": "1", "d": false}, &auth.Principal{Subject: "a", Role: auth.Reader, Prefixes: []string{"cart-"}}, false},
	} {
		if got := keyOf(c.vars, c.p) == base; got != c.share {
			t.Errorf("%s: shares = %v, want %v", c.name, got, c.share)
		}
	}
}

// TestShapeOneMakerPerEvent: of many subscribers that need the same event at
// once, one makes the encoding and the others wait for it; a failed maker
// lets the next one make it; a slot reused for another position is never
// mistaken for the old one.
func TestShapeOneMakerPerEvent(t *testing.T) {
	f := newFanout()
	s := f.acquire("k")
	var made atomic.Int32
	var wg sync.WaitGroup
	got := make([]string, 100)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, wait, lead := s.lookup(42)
			if wait != nil {
				<-wait
				data, _, lead = s.lookup(42)
			}
			if lead {
				made.Add(1)
				time.Sleep(10 * time.Millisecond)
				data = []byte("e42")
				s.done(42, data)
			}
			got[i] = string(data)
		}()
	}
	wg.Wait()
	if made.Load() != 1 {
		t.Errorf("made %d times, want once", made.Load())
	}
	for i, g := range got {
		if g != "e42" {
			t.Fatalf("subscriber %d got %q", i, g)
		}
	}

	// A maker that fails publishes nothing: the next subscriber leads.
	if _, _, lead := s.lookup(7); !lead {
		t.Fatal("first lookup of 7 does not lead")
	}
	s.done(7, nil)
	if data, wait, lead := s.lookup(7); data != nil || wait != nil || !lead {
		t.Fatalf("after a failure: %q %v %v, want to lead", data, wait, lead)
	}
	s.done(7, []byte("e7"))
	// The same slot, another position.
	if data, _, lead := s.lookup(7 + shapeSlots); data != nil || !lead {
		t.Fatalf("position %d got %q, lead %v", 7+shapeSlots, data, lead)
	}
	s.done(7, []byte("stale")) // a late maker of the old position changes nothing
	s.done(7+shapeSlots, []byte("new"))
	if data, _, _ := s.lookup(7 + shapeSlots); string(data) != "new" {
		t.Fatalf("got %q", data)
	}

	// A slot taken by another position while its encoding is being made:
	// the waiters for the old position are released (they were left
	// waiting forever once, when subscribers were more than shapeSlots
	// positions apart), and the old maker's done changes nothing.
	if _, _, lead := s.lookup(9); !lead {
		t.Fatal("first lookup of 9 does not lead")
	}
	_, wait, _ := s.lookup(9)
	if wait == nil {
		t.Fatal("second lookup of 9 does not wait")
	}
	if _, _, lead := s.lookup(9 + shapeSlots); !lead {
		t.Fatal("another position in the slot does not lead")
	}
	select {
	case <-wait:
	default:
		t.Fatal("the waiter for the old position was not released")
	}
	if data, wait, lead := s.lookup(9); data != nil || wait != nil || lead {
		t.Fatalf("a released waiter looking again: %q %v %v, want to make its own, uncached", data, wait, lead)
	}
	s.done(9, []byte("stale"))
	s.done(9+shapeSlots, []byte("new"))
	if data, _, _ := s.lookup(9 + shapeSlots); string(data) != "new" {
		t.Fatalf("got %q", data)
	}

	f.release(s)
	if f.size() != 0 {
		t.Fatalf("%d shapes after the last release", f.size())
	}
}
