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
}

// stateCache is a least-recently-used cache of current stream states.
//
// It needs no invalidation to stay coherent with other instances: events are
// immutable and a stream only grows, so a cached state at version v is
// exactly right for version v forever. Readers compare it with the stream's
// head (a memory read) and fold only the events after v.
type stateCache[S any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recently used; values are *cacheEntry[S]
	items map[string]*list.Element
}

type cacheEntry[S any] struct {
	key string
	val folded[S]
}

func newStateCache[S any](max int) *stateCache[S] {
	return &stateCache[S]{max: max, ll: list.New(), items: make(map[string]*list.Element)}
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
// (concurrent commands may finish out of order).
func (c *stateCache[S]) put(key string, v folded[S]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry[S])
		if v.version >= e.val.version {
			e.val = v
		}
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry[S]{key: key, val: v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry[S]).key)
	}
}

func (c *stateCache[S]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
