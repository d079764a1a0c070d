package eventstore

import (
	"context"
	"sync"
	"sync/atomic"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Subscription delivers matching events in position order, exactly once,
// first from the memory image (catch-up) and then live as the image grows.
// Catch-up and live are the same loop over the same gap-free log, so the
// handover loses and repeats nothing (guarantee 5). A subscription holds no
// buffer and no goroutine of its own: a slow reader only lags its cursor, so
// it cannot block writers or other subscribers (guarantee 7).
type Subscription struct {
	s       *Store
	f       filter
	maxLag  int64
	batched bool
	shard   uint32 // which of the waker's channels it waits on

	mu      sync.Mutex
	cursor  int64        // last position examined
	pending []Event      // fetched but not yet returned
	buf     []Event      // backing array reused for pages from memory; nil while waiting
	page    *[]Event     // the pagePool entry buf came from, to give back without allocating
	bufUsed int          // the most of buf any page used since it was taken from pagePool
	cat     *catchUp     // open while reading evicted positions from the store
	hasCat  atomic.Bool  // cat != nil, for Close
	done    atomic.Int64 // every matching event up to here has been returned
	ready   atomic.Int32 // len(pending) after the last Recv, for Buffered
	closed  chan struct{}
	once    sync.Once
}

// Subscribe starts a subscription. See SubscribeOptions for where it starts.
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if err := s.checkOpen(); err != nil {
		return nil, &Error{Op: "subscribe", StreamID: opts.StreamID, Err: err}
	}
	sub := &Subscription{s: s, f: newFilter(opts.Types, opts.StreamPrefix, opts.StreamID),
		maxLag: opts.MaxLag, batched: opts.Batched, closed: make(chan struct{})}
	switch {
	case opts.StreamID != "":
		if err := ValidateStreamID(opts.StreamID); err != nil {
			return nil, &Error{Op: "subscribe", StreamID: opts.StreamID, Err: err}
		}
		if opts.AfterVersion == nil {
			sub.cursor = s.img.head.Load()
			break
		}
		v := *opts.AfterVersion
		if v < 0 {
			return nil, &Error{Op: "subscribe", StreamID: opts.StreamID, Err: invalid("afterVersion must not be negative")}
		}
		// Events of the stream after version v are those after the
		// position of version v.
		if v == 0 {
			sub.cursor = 0
		} else if p, ok := s.img.positionOf(opts.StreamID, v); ok {
			sub.cursor = p
		} else {
			// The stream is not there yet: its version v+1 is still to come.
			sub.cursor = s.img.head.Load()
		}
	case opts.AfterPosition != nil:
		if *opts.AfterPosition < 0 {
			return nil, &Error{Op: "subscribe", Err: invalid("afterPosition must not be negative")}
		}
		sub.cursor = *opts.AfterPosition
	default:
		sub.cursor = s.img.head.Load()
	}
	sub.done.Store(sub.cursor)
	s.stats.subscribers.Add(1)
	if sub.batched {
		sub.shard = uint32(s.img.batch.subs.Add(1))
	}
	return sub, nil
}

// pageSize is how many events a subscription takes from memory at a time.
const pageSize = 64

// pagePool holds the page buffers of subscriptions that wait.
var pagePool = sync.Pool{New: func() any { b := make([]Event, 0, pageSize); return &b }}

// Recv returns the next matching event, waiting for one as long as ctx
// allows. After Close it returns ErrClosed.
//
// Events come from the image. When the next matching ones are evicted, Recv
// opens one cursor over the store from there up to the current head and
// reads on from it (the miss path, see miss.go), then returns to the image.
func (sub *Subscription) Recv(ctx context.Context) (Event, error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for {
		if len(sub.pending) > 0 {
			e := sub.pending[0]
			sub.pending = sub.pending[1:]
			if len(sub.pending) == 0 {
				sub.done.Store(sub.cursor)
			} else {
				sub.done.Store(e.Position)
			}
			sub.ready.Store(int32(len(sub.pending)))
			return e, nil
		}
		select {
		case <-sub.closed:
			sub.dropCatchUp()
			return Event{}, ErrClosed
		default:
		}
		if sub.maxLag > 0 && sub.Lag() > sub.maxLag {
			sub.dropCatchUp()
			return Event{}, ErrSubscriberTooSlow
		}
		if sub.cat != nil {
			if err := sub.fromStore(ctx); err != nil {
				return Event{}, err
			}
			continue
		}
		// A batched subscription does not wait on the store's context,
		// which all of them would share (and take its lock twice per
		// wake-up): it looks once it holds its wake-up channel, and
		// Close wakes every group.
		var changed, storeDone <-chan struct{}
		if sub.batched {
			changed = sub.s.img.batch.wait(sub.shard)
			if sub.s.ctx.Err() != nil {
				return Event{}, ErrClosed
			}
		} else {
			changed, storeDone = sub.s.img.wait(), sub.s.ctx.Done()
		}
		// pending is empty here, so its buffer can take the next page.
		if sub.buf == nil {
			sub.page = pagePool.Get().(*[]Event)
			sub.buf = *sub.page
		}
		evs, miss, scanned := sub.s.img.logPage(sub.cursor, sub.f, pageSize, sub.buf[:0])
		sub.buf = evs
		sub.bufUsed = max(sub.bufUsed, len(evs))
		if len(miss) > 0 {
			// Deliver what is resident before the first evicted event,
			// then read on from the store.
			k := 0
			for k < len(evs) && evs[k].Position < miss[0].position {
				k++
			}
			sub.cursor = max(sub.cursor, miss[0].position-1)
			if k > 0 {
				sub.pending = evs[:k]
				continue
			}
			if err := sub.openWindow(ctx, miss[0]); err != nil {
				return Event{}, err
			}
			continue
		}
		sub.cursor = max(sub.cursor, scanned)
		if len(evs) > 0 {
			sub.pending = evs
			continue
		}
		sub.done.Store(sub.cursor)
		// Idle, the subscription holds no page: with thousands of
		// subscribers, pages of up to 64 events each were a large part of
		// their memory.
		if sub.buf != nil {
			// Pooled pages hold no references into the image.
			clear(sub.buf[:sub.bufUsed])
			// Back through the pointer it came in: a new one would be an
			// allocation per wake-up.
			*sub.page = sub.buf[:0]
			pagePool.Put(sub.page)
			sub.buf, sub.page, sub.bufUsed = nil, nil, 0
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-sub.closed:
			return Event{}, ErrClosed
		case <-storeDone:
			return Event{}, ErrClosed
		}
	}
}

// catchUpWindow bounds the commits one catch-up cursor covers, by what the
// image knows of their sizes (sizeAt): FerretDB's SQLite backend pushes down
// neither a range nor a sort, so it answers a find by gathering every
// matching commit in memory and sorting them before it returns the first. A
// cursor from the start of a 16,384-event log of 4 KiB events up to the head
// held the whole range, and the server's live heap grew by 156 MiB
// (graph's BenchmarkCatchUp/store). One reply's worth bounds that; on MongoDB,
// an indexed range, a window costs a query where a getMore would have been.
// On FerretDB every window scans the collection again: a catch-up over R
// bytes of evicted commits scans it about R/catchUpWindow times.
const catchUpWindow = MaxReplyBytes

// openWindow opens a catch-up cursor at the commit that holds m, over the
// commits that follow it up to catchUpWindow bytes (at least that one), or
// up to the head. Its bound is the last position of the window's last
// commit: fromStore moves the subscription's cursor there once the window
// is read, and Recv goes on from the image, or with the next window.
func (sub *Subscription) openWindow(ctx context.Context, m slot) error {
	s := sub.s
	var q bson.D
	var bound, after, last int64
	if sub.f.stream != "" {
		from := m.version - int64(m.off) // the first version of the commit holding m
		var v int64
		v, bound = s.img.streamWindow(sub.f.stream, from, catchUpWindow)
		q = bson.D{{Key: "stream", Value: sub.f.stream}, {Key: "version", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: v}}}}
		after, last = from-1, v
	} else {
		from := m.position - int64(m.off) // the first position of the commit holding m
		bound = s.img.logWindow(from, catchUpWindow)
		q = bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: bound}}}}
		after, last = from-1, bound
	}
	s.stats.misses.Add(1)
	cur, err := s.findCommits(ctx, q, sub.f.stream, after, last)
	if err != nil {
		return err
	}
	sub.cat = &catchUp{cur: cur, bound: bound}
	sub.hasCat.Store(true)
	return nil
}

// logWindow returns the last position of the window of commits of the log
// that starts with the commit at position from: the commits whose sizes add
// up to at most budget (at least one), or every one up to the head.
func (im *image) logWindow(from, budget int64) int64 {
	im.mu.RLock()
	defer im.mu.RUnlock()
	var total int64
	for i := im.indexAfter(from - 1); i < im.n; i++ {
		sl := im.slotAt(i)
		if sl.off != 0 {
			continue
		}
		b := im.sizeAt(sl.position)
		if total > 0 && total+b > budget {
			return sl.position - 1 // the window ends before this commit
		}
		total += b
	}
	return im.head.Load()
}

// streamWindow is logWindow for one stream, from its version from: the
// window's last version and that version's position. A stream the image
// does not know gives from-1 and 0 (nothing to read).
func (im *image) streamWindow(id string, from, budget int64) (version, position int64) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil {
		return from - 1, 0
	}
	var total int64
	v := im.takeStreamCommits(st, max(from, 1), st.version, func(b int64) bool {
		if total > 0 && total+b > budget {
			return false // the window ends before this commit
		}
		total += b
		return true
	})
	if v == st.version {
		return st.version, st.lastPos
	}
	return v, im.versionSlot(st, v).position
}

// Buffered returns how many events the last Recv left fetched from memory
// and ready to return at once: the next Buffered calls of Recv will not
// wait. A caller that writes to a socket can hold its writes until then.
func (sub *Subscription) Buffered() int { return int(sub.ready.Load()) }

// Lag returns how many positions the subscription is behind the head.
// It is safe to call while Recv blocks.
func (sub *Subscription) Lag() int64 {
	return max(0, sub.s.img.head.Load()-sub.done.Load())
}

// Close ends the subscription; a Recv in progress returns ErrClosed. It is
// safe to call more than once.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		close(sub.closed)
		sub.s.stats.subscribers.Add(-1)
		if sub.batched {
			sub.s.img.batch.subs.Add(-1)
		}
		if sub.hasCat.Load() {
			// A Recv in progress holds mu; it returns soon, as it watches
			// closed. Release the store cursor after it.
			go func() {
				sub.mu.Lock()
				defer sub.mu.Unlock()
				sub.dropCatchUp()
			}()
		}
	})
}
