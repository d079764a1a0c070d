package graph

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/wstransport"
)

// Fan-out: what a live event costs per subscriber.
//
// Many subscribers send the same subscription document. gqlgen executes the
// selection set for every subscriber and every event: field contexts,
// resolvers, marshalling. With thousands of subscribers that was most of the
// server's CPU, and it starved the writer (the fan-out target of
// ARCHITECTURE.md: 5,000 subscribers at 100 events/s).
//
// So a subscription served by the endpoint has no goroutine of its own
// between the store and gqlgen. The response interceptor (subscriptionGuard)
// receives the next event straight from the subscriber's own store
// subscription, in gqlgen's transport goroutine, and asks the encoding cache
// for the bytes of that event under the subscriber's operation. Only the first
// subscriber to need them runs gqlgen's executor (the event goes on the
// resolver's channel and the interceptor calls next, gqlgen's normal path);
// the others get the same bytes as the response data. Everything that decides
// what a subscriber receives stays per subscriber: its own store subscription
// applies its filter and scope, starts where it asked and delivers exactly
// once in position order (guarantee 5); the cache only answers "how is event
// P encoded under this operation", which is the same for every subscriber of
// the operation.
//
// The cache key (a shape) is the operation's text and name, the values of the
// variables its selection set uses below the root field (arguments of the root
// field, such as afterPosition, only choose events and are checked by the
// store subscription), and the principal's role and stream prefixes, so that
// subscribers with different scopes never share an entry even if a field came
// to depend on the caller.
//
// Two more things keep the cost per event small:
//
//   - Store subscriptions are batched (eventstore SubscribeOptions.Batched),
//     so a subscriber is woken at most once per window with every event
//     committed since, and respond returns them one after the other without
//     waiting.
//   - Over a websocket, the transport (wstransport) frames the shared bytes
//     straight into the connection's buffer, and holds the messages of one
//     wake-up until the last (ReportBacklog), so they leave in one write.
//     respond writes shared encodings itself (wstransport.Emit) and returns
//     to gqlgen's executor only with a response it had to make alone, or
//     the last one: a round through the executor per event (its response
//     context, extensions chain and allocations) was most of a delivery's
//     cost at 10,000 subscribers, and once per wake-up still a tenth of the
//     server's CPU there, with the garbage that made the collector scan
//     10,000 stacks more often. The bytes are the same; what differs is
//     that a response interceptor wrapped around this one sees none of
//     those events (today the only one is errorCap, which has nothing to do
//     for a response without errors).

// fanout holds the encodings shared by subscribers of the same operation.
type fanout struct {
	mu     sync.Mutex
	shapes map[string]*shape
}

// shapeSlots is how many recent events a shape keeps encoded: enough for
// subscribers that are a little apart (they are woken by the same append, but
// some write sooner than others); one further behind re-executes, which is
// correct, only slower.
const shapeSlots = 256

// shape is the encodings of events under one operation, by position.
type shape struct {
	key  string
	refs int // subscriptions using it; guarded by fanout.mu
	// users is refs, for the subscriptions that read it without fanout.mu:
	// a subscription alone on its shape does not cache, since nobody would
	// read what it keeps (a catch-up from the start of 16,384 events of 4
	// KiB allocated 121 MiB, two thirds of it copies into the cache).
	users atomic.Int32

	mu    sync.Mutex
	slots [shapeSlots]slot
}

// slot is one event's encoding. While ready is open, one subscriber is
// executing it; the others wait for it rather than all executing at once.
type slot struct {
	pos   int64
	data  []byte
	ready chan struct{}
}

func newFanout() *fanout { return &fanout{shapes: map[string]*shape{}} }

// acquire returns the shape for key, creating it; release it when done.
func (f *fanout) acquire(key string) *shape {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shapes[key]
	if s == nil {
		s = &shape{key: key}
		f.shapes[key] = s
	}
	s.refs++
	s.users.Store(int32(s.refs))
	return s
}

func (f *fanout) release(s *shape) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(f.shapes, s.key)
	}
	s.users.Store(int32(s.refs))
}

// size returns the number of shapes in use, for tests.
func (f *fanout) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.shapes)
}

// lookup returns the encoding of the event at pos if it is cached. If not,
// and nobody is making it, the caller becomes its maker (lead) and must call
// done; if somebody is, wait is closed when they finish. With none of the
// three, the caller makes the encoding for itself.
func (s *shape) lookup(pos int64) (data []byte, wait <-chan struct{}, lead bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[pos%shapeSlots]
	if sl.pos == pos && (sl.data != nil || sl.ready != nil) {
		if sl.ready != nil {
			return nil, sl.ready, false
		}
		return sl.data, nil, false
	}
	if pos < sl.pos {
		// The slot has moved on to a later event: make this one without
		// caching it (a subscriber this far behind is rare).
		return nil, nil, false
	}
	if sl.ready != nil {
		// An earlier position is being made in this slot: its maker's
		// done will find the slot taken and return, so release its
		// waiters here. Looking again, they make it themselves.
		close(sl.ready)
	}
	*sl = slot{pos: pos, ready: make(chan struct{})}
	return nil, nil, true
}

// done publishes the encoding the lead made (nil if it could not) and wakes
// the subscribers waiting for it.
func (s *shape) done(pos int64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := &s.slots[pos%shapeSlots]
	if sl.pos != pos || sl.ready == nil {
		return // taken by another position meanwhile, which released our waiters
	}
	close(sl.ready)
	sl.ready = nil
	sl.data = data
}

// shapeKey is the cache key of the operation in ctx for principal p, and
// false if the operation cannot share encodings.
func shapeKey(ctx context.Context, p *auth.Principal) (string, bool) {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || len(oc.Operation.SelectionSet) != 1 {
		return "", false
	}
	root, ok := oc.Operation.SelectionSet[0].(*ast.Field)
	if !ok || len(root.Directives) > 0 {
		return "", false
	}
	used := map[string]bool{}
	varsIn(oc.Doc, root.SelectionSet, used, map[string]bool{})
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(oc.RawQuery)
	b.WriteByte(0)
	b.WriteString(oc.OperationName)
	b.WriteByte(0)
	for _, n := range names {
		v, err := json.Marshal(oc.Variables[n]) // maps marshal with sorted keys
		if err != nil {
			return "", false
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.Write(v)
		b.WriteByte(0)
	}
	if p != nil {
		b.WriteString(p.Role.String())
		for _, pre := range p.Prefixes {
			b.WriteByte(0)
			b.WriteString(pre)
		}
	}
	return b.String(), true
}

// varsIn adds to used the variables referenced in set: in arguments and
// directives, at any depth, through fragments.
func varsIn(doc *ast.QueryDocument, set ast.SelectionSet, used, seen map[string]bool) {
	args := func(list ast.ArgumentList) {
		for _, a := range list {
			valueVars(a.Value, used)
		}
	}
	dirs := func(list ast.DirectiveList) {
		for _, d := range list {
			args(d.Arguments)
		}
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			args(s.Arguments)
			dirs(s.Directives)
			varsIn(doc, s.SelectionSet, used, seen)
		case *ast.InlineFragment:
			dirs(s.Directives)
			varsIn(doc, s.SelectionSet, used, seen)
		case *ast.FragmentSpread:
			dirs(s.Directives)
			if seen[s.Name] || doc == nil {
				continue
			}
			seen[s.Name] = true
			if def := doc.Fragments.ForName(s.Name); def != nil {
				dirs(def.Directives)
				varsIn(doc, def.SelectionSet, used, seen)
			}
		}
	}
}

func valueVars(v *ast.Value, used map[string]bool) {
	if v == nil {
		return
	}
	if v.Kind == ast.Variable {
		used[v.Raw] = true
	}
	for _, c := range v.Children {
		valueVars(c.Value, used)
	}
}

// feed is a subscription that the response interceptor drains itself,
// instead of a pump goroutine: see the comment at the top of this file.
type feed interface {
	// recv waits for the next value. key is its position, when its
	// encoding may be shared.
	recv(ctx context.Context) (key int64, shareable bool, err error)
	// push hands the value last received to gqlgen's executor, through the
	// resolver's channel, for the next call of the response handler.
	push()
	close()
	// buffered is how many further values are ready without waiting.
	buffered() int
}

// directFeed is the feed of one subscription.
type directFeed[T any] struct {
	sub  receiver[T]
	ch   chan *T // the resolver's channel; buffered, only push sends
	last T
}

// recv returns the next value.
func (f *directFeed[T]) recv(ctx context.Context) (int64, bool, error) {
	v, err := f.sub.Recv(ctx)
	if err != nil {
		return 0, false, err
	}
	f.last = v
	if e, ok := any(&f.last).(*eventstore.Event); ok {
		return e.Position, true, nil
	}
	return 0, false, nil
}

func (f *directFeed[T]) push() {
	v := f.last
	f.ch <- &v
}

func (f *directFeed[T]) close() { f.sub.Close() }

func (f *directFeed[T]) buffered() int { return bufferedOf(f.sub) }

// bufferedOf is r's Buffered, for receivers that have one (the store's
// subscriptions and wrappers of them), else 0.
func bufferedOf(r any) int {
	if b, ok := r.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// respond produces the next response of a subscription with a feed; it is
// the response interceptor's part for such subscriptions. The error that
// ended a subscription (the slow-consumer policy closes the store
// subscription and leaves its reason in h) is its last response.
func (g subscriptionGuard) respond(ctx context.Context, h *subEnd, next graphql.ResponseHandler) *graphql.Response {
	for {
		if h.ended {
			return nil
		}
		pos, shareable, err := h.feed.recv(ctx)
		if err != nil {
			h.ended = true
			h.feed.close()
			if why := h.take(); why != nil {
				err = why
			} else if ctx.Err() != nil {
				return nil
			}
			return &graphql.Response{Errors: gqlerror.List{g.present(ctx, err)}}
		}
		data, resp := g.encode(ctx, h, pos, shareable, next)
		if data == nil {
			return resp
		}
		// Over a websocket, write the event directly and go on, so that
		// gqlgen's executor is not entered once per event or wake-up:
		// held while more of the wake-up are ready, the events leave
		// together with the last.
		if ok, err := wstransport.Emit(ctx, data, h.feed.buffered() > 0); ok {
			if err != nil {
				return nil // the operation or the connection ended
			}
			continue
		}
		// The transports are done with a response before they ask for
		// the next, so one serves every event: at 10,000 subscribers this
		// was the largest allocation per delivery.
		h.resp = graphql.Response{Data: data}
		return &h.resp
	}
}

// encode returns the shared encoding of the event at pos under the
// subscription's operation (data), or else the response gqlgen's executor
// made for it alone (resp, nil when ctx ended).
func (g subscriptionGuard) encode(ctx context.Context, h *subEnd, pos int64, shareable bool, next graphql.ResponseHandler) (data []byte, resp *graphql.Response) {
	if !shareable || g.fanout == nil {
		h.feed.push()
		return nil, next(ctx)
	}
	if h.shape == nil && !h.unshared {
		key, ok := shapeKey(ctx, auth.FromContext(ctx))
		if !ok {
			h.unshared = true
		} else {
			h.shape = g.fanout.acquire(key)
			s := h.shape
			context.AfterFunc(ctx, func() { g.fanout.release(s) })
		}
	}
	if h.shape == nil || h.shape.users.Load() == 1 {
		h.feed.push()
		return nil, next(ctx)
	}
	data, wait, lead := h.shape.lookup(pos)
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil
		}
		// Normally the data is there now. If its maker failed, make it
		// (lead); if yet another subscriber makes it, don't wait twice.
		data, wait, lead = h.shape.lookup(pos)
	}
	if data != nil {
		return data, nil
	}
	h.feed.push()
	resp = next(ctx)
	if !lead {
		return nil, resp
	}
	var shared []byte
	if resp != nil && len(resp.Errors) == 0 && len(resp.Extensions) == 0 && len(resp.Data) > 0 {
		// gqlgen reuses its buffer for the next response.
		shared = append([]byte(nil), resp.Data...)
	}
	h.shape.done(pos, shared)
	if shared == nil {
		return nil, resp
	}
	return shared, nil
}
