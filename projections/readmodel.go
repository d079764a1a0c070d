package projections

import (
	"context"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// readModel is the temporal read model behind Orders, OrderStats and
// OrderStatsSeries. For every order it holds every state the order has had,
// each valid from the position of the event that produced it until the
// position of the next one, so "the orders as they were at position P" is a
// binary search per order instead of a replay of the log. Aggregates are kept
// as a timeline of running totals, one point per position that changed them,
// so OrderStats at any point is one binary search.
//
// It is fed by the projector strictly in position order with every event of
// the log, order or not, so its checkpoint is exact: everything at or before
// it is in, nothing after it is.
type readModel struct {
	mu       sync.RWMutex
	orders   map[string]*orderTimeline // by stream id
	created  []*orderTimeline          // created orders by creation position (appended in that order)
	stats    []statsPoint              // running totals, by position
	versions int                       // order states held
	changed  chan struct{}             // closed and replaced when the checkpoint advances

	checkpoint atomic.Int64
}

type orderTimeline struct {
	createdAt int64          // position of the event that created the order; 0 until then
	state     Order          // the fold so far, created or not
	versions  []orderVersion // created states, by position
}

// orderVersion is an order's state valid from position from up to, not
// including, the next version's from.
type orderVersion struct {
	from  int64
	order Order
}

// statsPoint holds the aggregates valid from position on.
type statsPoint struct {
	position int64
	counts   [5]int64 // indexed like AllStatuses
	revenue  int64
}

func newReadModel() *readModel {
	return &readModel{orders: map[string]*orderTimeline{}, changed: make(chan struct{})}
}

func statusIndex(s OrderStatus) int {
	for i, st := range AllStatuses {
		if st == s {
			return i
		}
	}
	return -1
}

func earnsRevenue(s OrderStatus) bool { return s == StatusPaid || s == StatusShipped }

// apply adds one event of the log. Events of other streams only advance the
// checkpoint. It returns the order's new state, if the event was an order's.
func (rm *readModel) apply(ev eventstore.Event, proj Projection[Order]) (Order, bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	defer rm.advance(ev.Position)
	if !strings.HasPrefix(ev.StreamID, OrderStreamPrefix) {
		return Order{}, false
	}
	tl := rm.orders[ev.StreamID]
	if tl == nil {
		tl = &orderTimeline{state: proj.Initial()}
		rm.orders[ev.StreamID] = tl
	}
	prev := tl.state
	next := proj.Apply(prev, ev)
	tl.state = next
	if !orderExists(next) {
		return next, true
	}
	if !orderExists(prev) {
		tl.createdAt = ev.Position
		rm.created = append(rm.created, tl)
	}
	tl.versions = append(tl.versions, orderVersion{from: ev.Position, order: next})
	rm.versions++

	var p statsPoint
	if n := len(rm.stats); n > 0 {
		p = rm.stats[n-1]
	}
	before := p
	if orderExists(prev) {
		p.counts[statusIndex(prev.Status)]--
		if earnsRevenue(prev.Status) {
			p.revenue -= prev.TotalCents
		}
	}
	p.counts[statusIndex(next.Status)]++
	if earnsRevenue(next.Status) {
		p.revenue += next.TotalCents
	}
	if p.counts != before.counts || p.revenue != before.revenue {
		p.position = ev.Position
		rm.stats = append(rm.stats, p)
	}
	return next, true
}

// advance moves the checkpoint and wakes waiters. Callers hold mu.
func (rm *readModel) advance(pos int64) {
	rm.checkpoint.Store(pos)
	close(rm.changed)
	rm.changed = make(chan struct{})
}

// waitFor blocks until the checkpoint reaches p or ctx ends.
func (rm *readModel) waitFor(ctx context.Context, p int64) error {
	for {
		rm.mu.RLock()
		ch := rm.changed
		rm.mu.RUnlock()
		if rm.checkpoint.Load() >= p {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// at returns the order's state at position p, if it existed then.
func (tl *orderTimeline) at(p int64) (Order, bool) {
	i := sort.Search(len(tl.versions), func(i int) bool { return tl.versions[i].from > p })
	if i == 0 {
		return Order{}, false
	}
	return tl.versions[i-1].order, true
}

// cursorKey is the stable sort key of an order in lists: the position that
// created it, then its id.
type cursorKey struct {
	position int64
	id       string
}

func (k cursorKey) less(o cursorKey) bool {
	if k.position != o.position {
		return k.position < o.position
	}
	return k.id < o.id
}

const cursorPrefix = "o1:"

func (k cursorKey) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(k.position, 10) + ":" + k.id))
}

func decodeCursor(s string) (cursorKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if err != nil || !ok {
		return cursorKey{}, invalidInput("the cursor %q is not one this server made", s)
	}
	pos, id, ok := strings.Cut(rest, ":")
	p, err := strconv.ParseInt(pos, 10, 64)
	if !ok || err != nil || p < 1 {
		return cursorKey{}, invalidInput("the cursor %q is not one this server made", s)
	}
	return cursorKey{position: p, id: id}, nil
}

// listAt returns the orders that existed at p and match, in key order: the
// first `first` after `after` (nil = from the start), whether more follow,
// and how many match in all.
func (rm *readModel) listAt(p int64, match func(Order) bool, after *cursorKey, first int) (page []Order, keys []cursorKey, total int, hasNext bool) {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	n := sort.Search(len(rm.created), func(i int) bool { return rm.created[i].createdAt > p })
	for _, tl := range rm.created[:n] {
		o, ok := tl.at(p)
		if !ok || !match(o) {
			continue
		}
		total++
		k := cursorKey{position: tl.createdAt, id: o.ID}
		if after != nil && !after.less(k) {
			continue
		}
		if len(page) == first {
			hasNext = true
			continue
		}
		page = append(page, cloneOrder(o))
		keys = append(keys, k)
	}
	return page, keys, total, hasNext
}

// statsAt returns the aggregates at position p.
func (rm *readModel) statsAt(p int64) statsPoint {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	i := sort.Search(len(rm.stats), func(i int) bool { return rm.stats[i].position > p })
	if i == 0 {
		return statsPoint{}
	}
	return rm.stats[i-1]
}

// size returns how many orders and order states the model holds.
func (rm *readModel) size() (orders, versions int) {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	return len(rm.created), rm.versions
}
