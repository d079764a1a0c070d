package projections

import (
	"encoding/base64"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// readModel is the temporal read model behind Orders, OrderStats and
// OrderStatsSeries: a partitionSet (temporal.go) with one timeline per
// created order, keyed by order id, so "the orders as they were at position
// P" is a binary search per order instead of a replay of the log. Aggregates
// are kept as a timeline of running totals, one point per position that
// changed them, so OrderStats at any point is one binary search.
//
// It is fed by the projector strictly in position order with every event of
// the log, order or not, so its checkpoint is exact: everything at or before
// it is in, nothing after it is.
type readModel struct {
	mu     sync.RWMutex
	folds  map[string]Order    // the fold so far of every order stream, created or not
	orders partitionSet[Order] // created orders' states, by order id
	stats  []statsPoint        // running totals, by position

	watermark
}

// statsPoint holds the aggregates valid from position on.
type statsPoint struct {
	position int64
	counts   [5]int64 // indexed like AllStatuses
	revenue  int64
}

func newReadModel() *readModel {
	return &readModel{folds: map[string]Order{}, orders: newPartitionSet[Order]()}
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
	prev, ok := rm.folds[ev.StreamID]
	if !ok {
		prev = proj.Initial()
	}
	next := proj.Apply(prev, ev)
	rm.folds[ev.StreamID] = next
	if !orderExists(next) {
		return next, true
	}
	rm.orders.record(next.ID, ev.Position, next)

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
	found, total, hasNext := rm.orders.listAt(p, func(_ string, o Order) bool { return match(o) }, after, first, true)
	for _, f := range found {
		page = append(page, cloneOrder(f.state))
		keys = append(keys, f.key)
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
	return len(rm.orders.created), rm.orders.states
}
