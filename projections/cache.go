package projections

import (
	"container/list"
	"sync"
)

// folded is a projection's state of one stream after version (0 = before
// its first event).
type folded[S any] struct {
	state   S
	version int64
	// size is the state's size as JSON: exact for a sizedProjection, an
	// estimate otherwise. The state cache counts it against its budget.
	size jsonSize
	// unsnapped is the event data folded since the last snapshot point
	// (see snapshotEveryBytes).
	unsnapped int
}

// cacheEntryOverhead is what the cache counts per entry beyond its state and
// key: the list element, the map entry and the entry itself.
const cacheEntryOverhead = 256

// stateCache is a least-recently-used cache of current stream states,
// bounded by a number of entries and by an estimate of their memory: a
// count alone let 10,000 states of 4 MiB hold 40 GB.
//
// It needs no invalidation to stay coherent with other instances: events are
// immutable and a stream only grows, so a cached state at version v is
// exactly right for version v forever. Readers compare it with the stream's
// head (a memory read) and fold only the events after v.
type stateCache[S any] struct {
	mu     sync.Mutex
	max    int
	budget int64      // bytes
	bytes  int64      // held, as entryCost counts them
	ll     *list.List // front = most recently used; values are *cacheEntry[S]
	items  map[string]*list.Element
}

type cacheEntry[S any] struct {
	key  string
	val  folded[S]
	cost int64
}

func newStateCache[S any](max int, budget int64) *stateCache[S] {
	return &stateCache[S]{max: max, budget: budget, ll: list.New(), items: make(map[string]*list.Element)}
}

// entryCost is what an entry counts against the budget.
func entryCost[S any](key string, v folded[S]) int64 {
	return cacheEntryOverhead + int64(len(key)) + v.size.memory()
}

func (c *stateCache[S]) get(key string) (folded[S], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return folded[S]{}, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*cacheEntry[S]).val, true
}

// put stores a state unless a later version of the stream is cached already
// (concurrent commands may finish out of order), then evicts the least
// recently used entries until the cache is within its bounds. A state that
// alone costs more than the budget is not cached.
func (c *stateCache[S]) put(key string, v folded[S]) {
	cost := entryCost(key, v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cost > c.budget {
		return
	}
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry[S])
		if v.version >= e.val.version {
			c.bytes += cost - e.cost
			e.val, e.cost = v, cost
		}
		c.ll.MoveToFront(el)
	} else {
		c.items[key] = c.ll.PushFront(&cacheEntry[S]{key: key, val: v, cost: cost})
		c.bytes += cost
	}
	// The front entry fits the budget alone, so this never evicts it.
	for c.ll.Len() > c.max || c.bytes > c.budget {
		last := c.ll.Back()
		e := last.Value.(*cacheEntry[S])
		c.ll.Remove(last)
		delete(c.items, e.key)
		c.bytes -= e.cost
	}
}

func (c *stateCache[S]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// held returns the bytes the cache counts for what it holds.
func (c *stateCache[S]) held() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
