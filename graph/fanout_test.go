package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

const fanoutQuery = `subscription($from: Position, $types: [String!], $data: Boolean! = false) {
	events(afterPosition: $from, types: $types) { position streamId type data @include(if: $data) }
}`

// fanoutSub is one websocket subscription of TestFanoutSharesEncodings.
type fanoutSub struct {
	name string
	key  string         // API key
	vars map[string]any // besides from
	keep func(e eventstore.Event) bool
	data bool // expects the data field

	c    *websocket.Conn
	got  []json.RawMessage
	errs []string
}

// TestFanoutSharesEncodings: many subscribers of the same operation share one
// encoding of each event, and that never changes what any of them receives.
// 200 subscribers send the same document and variables; others differ in a
// variable that filters (types), one that changes the encoding (@include),
// the principal's scope (a key limited to cart- and order-a streams) and the
// start position. Four writers append concurrently. Each subscriber must get
// exactly the events its filter and scope select, in position order, without
// duplicates, with the fields its own variables ask for, and then a final
// sentinel event that all of them see as the very next message.
func TestFanoutSharesEncodings(t *testing.T) {
	h := newHarness(t, withAPIKeys(t), func(c *graph.EndpointConfig) {
		c.Streams = graph.StreamLimits{MaxConnectionsPerPrincipal: 1000, MaxSubscriptionsPerPrincipal: 1000}
	})
	start := h.appendEvents("cart-0", "A", 0, 5)
	head := start[len(start)-1].Position
	early := start[1].Position // a subscriber that starts inside what is already stored

	all := func(eventstore.Event) bool { return true }
	var subs []*fanoutSub
	n := 200
	if testing.Short() {
		n = 50
	}
	for i := 0; i < n; i++ {
		subs = append(subs, &fanoutSub{name: "same-" + strconv.Itoa(i), key: "reader-all-0000000000000000", keep: all})
	}
	subs = append(subs,
		&fanoutSub{name: "types-B", key: "reader-all-0000000000000000", vars: map[string]any{"types": []string{"B"}},
			keep: func(e eventstore.Event) bool { return e.Type == "B" }},
		&fanoutSub{name: "with-data", key: "reader-all-0000000000000000", vars: map[string]any{"data": true}, keep: all, data: true},
		&fanoutSub{name: "scoped", key: "reader-cart-000000000000000", keep: func(e eventstore.Event) bool {
			return strings.HasPrefix(e.StreamID, "cart-") || strings.HasPrefix(e.StreamID, "order-a")
		}},
		&fanoutSub{name: "scoped-data", key: "reader-cart-000000000000000", vars: map[string]any{"data": true}, data: true,
			keep: func(e eventstore.Event) bool {
				return strings.HasPrefix(e.StreamID, "cart-") || strings.HasPrefix(e.StreamID, "order-a")
			}},
		&fanoutSub{name: "early", key: "reader-all-0000000000000000", vars: map[string]any{"from": strconv.FormatInt(early, 10)}, keep: all},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range subs {
		w, err := dialAuth(t, h, fmt.Sprintf(`{"Authorization": "Bearer %s"}`, s.key))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		s.c = w.c
		vars := map[string]any{"from": strconv.FormatInt(head, 10)}
		for k, v := range s.vars {
			vars[k] = v
		}
		w.subscribe("1", fanoutQuery, vars)
	}
	// Every subscription is active once it has received this event, which
	// all of them see.
	primer := h.appendEvents("cart-0", "B", 100, 1)
	stored := append(start, primer...)

	var wg sync.WaitGroup
	read := func(s *fanoutSub, until int64) {
		defer wg.Done()
		for {
			_, b, err := s.c.Read(ctx)
			if err != nil {
				s.errs = append(s.errs, fmt.Sprintf("read: %v", err))
				return
			}
			var m struct {
				Type    string
				Payload struct {
					Data   struct{ Events json.RawMessage }
					Errors json.RawMessage
				}
			}
			if err := json.Unmarshal(b, &m); err != nil {
				s.errs = append(s.errs, fmt.Sprintf("message %s: %v", b, err))
				return
			}
			switch {
			case m.Type == "ping":
				_ = s.c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
				continue
			case m.Type != "next" || len(m.Payload.Errors) > 0:
				s.errs = append(s.errs, fmt.Sprintf("unexpected message %s", b))
				return
			}
			s.got = append(s.got, m.Payload.Data.Events)
			var e struct{ Position string }
			_ = json.Unmarshal(m.Payload.Data.Events, &e)
			if p, _ := strconv.ParseInt(e.Position, 10, 64); p >= until {
				return
			}
		}
	}
	for _, s := range subs {
		wg.Add(1)
		go read(s, primer[0].Position)
	}
	wg.Wait()

	// Four writers, on streams inside and outside the scoped key, with both
	// types.
	var mu sync.Mutex
	var wwg sync.WaitGroup
	for wi, stream := range []string{"cart-1", "other-1", "order-a1", "order-b1"} {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 0; i < 15; i++ {
				typ := []string{"A", "B"}[(i+wi)%2]
				res, err := h.store.Append(ctx, stream, eventstore.Any{}, eventstore.NewEvent{Type: typ, Data: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				stored = append(stored, res.Events...)
				mu.Unlock()
			}
		}()
	}
	wwg.Wait()
	sentinel := h.appendEvents("cart-end", "B", 0, 1)[0]
	stored = append(stored, sentinel)
	for _, s := range subs {
		wg.Add(1)
		go read(s, sentinel.Position)
	}
	wg.Wait()

	byPos := map[int64]eventstore.Event{}
	for _, e := range stored {
		byPos[e.Position] = e
	}
	for _, s := range subs {
		if len(s.errs) > 0 {
			t.Errorf("%s: %v", s.name, s.errs)
			continue
		}
		from := head
		if f, ok := s.vars["from"].(string); ok {
			from, _ = strconv.ParseInt(f, 10, 64)
		}
		var want []string
		for p := from + 1; p <= sentinel.Position; p++ {
			e, ok := byPos[p]
			if !ok {
				t.Fatalf("position %d was not appended by this test", p)
			}
			if !s.keep(e) {
				continue
			}
			w := fmt.Sprintf(`{"position":"%d","streamId":%q,"type":%q`, e.Position, e.StreamID, e.Type)
			if s.data {
				w += `,"data":` + string(e.Data)
			}
			want = append(want, w+"}")
		}
		if len(s.got) != len(want) {
			t.Errorf("%s: got %d events, want %d", s.name, len(s.got), len(want))
		}
		for i := 0; i < min(len(s.got), len(want)); i++ {
			if string(s.got[i]) != want[i] {
				t.Errorf("%s: event %d is %s, want %s", s.name, i, s.got[i], want[i])
				break
			}
		}
	}
}
