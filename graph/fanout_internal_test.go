package graph

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
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

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	closed bool
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }
func (c *countingConn) Close() error                     { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }

func (c *countingConn) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range c.writes {
		out = append(out, string(w))
	}
	return out
}

// TestCoalescingConn: a write after a quiet spell goes out at once; writes
// soon after it go out together, in order, within the delay; Close sends
// what is held.
func TestCoalescingConn(t *testing.T) {
	nc := &countingConn{}
	c := newCoalescingConn(nc, 50*time.Millisecond, time.Second)
	for _, m := range []string{"a", "b", "c"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if got := nc.snapshot(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("at once: %q, want [a]", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(nc.snapshot()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := nc.snapshot(); len(got) != 2 || got[1] != "bc" {
		t.Fatalf("after the delay: %q, want [a bc]", got)
	}
	_, _ = c.Write([]byte("d"))
	_, _ = c.Write([]byte("e"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := nc.snapshot()
	if last := got[len(got)-1]; last != "de" && last != "e" {
		t.Fatalf("writes %q: d and e not sent before close", got)
	}
	if !nc.closed {
		t.Fatal("not closed")
	}
}

// TestCoalescingConnCork: a subscriber with several events ready corks the
// connection, and they leave in one write when it uncorks, even after a
// quiet spell; a cork left open still lets them go within the delay.
func TestCoalescingConnCork(t *testing.T) {
	nc := &countingConn{}
	c := newCoalescingConn(nc, 50*time.Millisecond, time.Second)
	c.cork()
	for _, m := range []string{"a", "b", "c"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if got := nc.snapshot(); len(got) != 0 {
		t.Fatalf("corked: %q written", got)
	}
	c.uncork()
	if got := nc.snapshot(); len(got) != 1 || got[0] != "abc" {
		t.Fatalf("uncorked: %q, want [abc]", got)
	}

	// Two subscriptions of one connection: the first uncork waits for the
	// second.
	time.Sleep(60 * time.Millisecond) // quiet again
	c.cork()
	c.cork()
	_, _ = c.Write([]byte("d"))
	c.uncork()
	_, _ = c.Write([]byte("e"))
	if got := nc.snapshot(); len(got) != 1 {
		t.Fatalf("one of two corks open: %q written", got)
	}
	c.uncork()
	if got := nc.snapshot(); len(got) != 2 || got[1] != "de" {
		t.Fatalf("both uncorked: %q, want [abc de]", got)
	}

	// A cork never closed: the timer sends what is held.
	time.Sleep(60 * time.Millisecond)
	c.cork()
	_, _ = c.Write([]byte("f"))
	deadline := time.Now().Add(2 * time.Second)
	for len(nc.snapshot()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := nc.snapshot(); len(got) != 3 || got[2] != "f" {
		t.Fatalf("open cork: %q, want [abc de f]", got)
	}
	_ = c.Close()
}

// frame builds a server frame (unmasked) with opcode op and payload p.
func frame(op byte, p []byte) []byte {
	b := appendFrameHeader(nil, len(p))
	b[0] = 0x80 | op
	return append(b, p...)
}

// TestFrameTracker: the tracker finds every frame boundary in a stream cut
// anywhere, for each length encoding, and notices a close frame.
func TestFrameTracker(t *testing.T) {
	var stream []byte
	var ends []int
	for _, f := range [][]byte{
		frame(0x1, []byte(`{"type":"next"}`)),
		frame(0x1, bytes.Repeat([]byte("a"), 300)),   // 16-bit length
		frame(0x1, bytes.Repeat([]byte("b"), 70000)), // 64-bit length
		frame(0x9, nil), // ping
		frame(0x1, []byte("x")),
	} {
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	for _, cut := range []int{1, 2, 3, 7, 64, 511, 4096} {
		var tr frameTracker
		boundaries := map[int]bool{}
		for i := 0; i < len(stream); i += cut {
			j := min(i+cut, len(stream))
			if tr.advance(stream[i:j]) {
				boundaries[j] = true
			}
		}
		for j := range boundaries {
			if !slices.Contains(ends, j) {
				t.Fatalf("cut %d: a boundary reported at %d, inside a frame", cut, j)
			}
		}
		for _, e := range ends {
			if e%cut == 0 || e == len(stream) {
				if !boundaries[e] {
					t.Fatalf("cut %d: the boundary at %d was missed", cut, e)
				}
			}
		}
		if tr.closed {
			t.Fatal("closed without a close frame")
		}
	}
	var tr frameTracker
	tr.advance(frame(0x8, []byte{0x03, 0xe8}))
	if !tr.closed || !tr.atBoundary() {
		t.Fatal("a close frame was not noticed")
	}
}

// TestWriteTextBetweenFrames: a message of our own waits while coder is in
// the middle of a frame, and goes after it, never into it; after a close
// frame nothing more is written.
func TestWriteTextBetweenFrames(t *testing.T) {
	nc := &countingConn{}
	c := newCoalescingConn(nc, 0, time.Second)
	big := frame(0x1, bytes.Repeat([]byte("c"), 1000))
	if _, err := c.Write(big[:3]); err != nil { // part of the header
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.writeText([]byte(`{"a":`), []byte("1"), []byte(`}`)) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("writeText went into the middle of a frame (err %v)", err)
	default:
	}
	if _, err := c.Write(big[3:500]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(big[500:]); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := []byte(strings.Join(nc.snapshot(), ""))
	want := append(append([]byte(nil), big...), frame(0x1, []byte(`{"a":1}`))...)
	if !bytes.Equal(got, want) {
		t.Fatalf("stream of %d bytes, want %d: frames mixed", len(got), len(want))
	}

	if _, err := c.Write(frame(0x8, []byte{0x03, 0xe8})); err != nil {
		t.Fatal(err)
	}
	if err := c.writeText([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeText after a close frame: %v", err)
	}

	// A connection that fails releases a writer waiting for a boundary.
	c2 := newCoalescingConn(&countingConn{}, 0, time.Second)
	_, _ = c2.Write(big[:10])
	go func() { done <- c2.writeText([]byte("x")) }()
	time.Sleep(10 * time.Millisecond)
	_ = c2.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeText on a closed connection: %v", err)
	}
}
