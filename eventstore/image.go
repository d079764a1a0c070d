package eventstore

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// image is the memory image of the log: the global log in position order and
// every stream's history. Reads are served from it; it is fed only with
// commits that are durable in the store, strictly in position order, so it is
// never ahead of the store (guarantee 8) and always a prefix of the log.
type image struct {
	mu       sync.RWMutex
	log      []*Event // resident events in position order
	streams  map[string]*streamEntry
	headTime time.Time
	bytes    int64
	changed  chan struct{} // closed and replaced whenever head advances

	head atomic.Int64 // highest applied position; read without the lock
}

type streamEntry struct {
	id     string
	events []*Event // versions 1..n
}

func newImage() *image {
	return &image{streams: make(map[string]*streamEntry), changed: make(chan struct{})}
}

// eventBytes estimates what an event costs in memory: its payload plus the
// struct, slice and map overhead.
func eventBytes(e *Event) int64 {
	return int64(len(e.ID)+len(e.Type)+len(e.Data)+len(e.Metadata)+len(e.Hash)) + 160
}

type applyResult int

const (
	applied   applyResult = iota
	duplicate             // already applied: first position at or below head
	gap                   // first position beyond head+1: an earlier commit is not applied yet
)

// apply adds one commit's events, which must start at head+1. Positions are
// gap-free by construction (a position is only written by a writer that has
// seen the one before it), so a commit beyond head+1 means an earlier one is
// still on its way to this process; applying it would skip that one. force
// applies it anyway, for the bounded wait of guarantee 5.
func (im *image) apply(events []Event, force bool) applyResult {
	if len(events) == 0 {
		return duplicate
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	head := im.head.Load()
	switch {
	case events[0].Position <= head:
		return duplicate
	case events[0].Position > head+1 && !force:
		return gap
	}
	for i := range events {
		e := &events[i]
		st := im.streams[e.StreamID]
		if st == nil {
			st = &streamEntry{id: e.StreamID}
			im.streams[e.StreamID] = st
		}
		e.StreamID = st.id // share one string per stream
		st.events = append(st.events, e)
		im.log = append(im.log, e)
		im.bytes += eventBytes(e)
	}
	last := events[len(events)-1]
	im.headTime = last.RecordedAt
	im.head.Store(last.Position)
	close(im.changed)
	im.changed = make(chan struct{})
	return applied
}

// wait returns a channel closed when head next advances.
func (im *image) wait() <-chan struct{} {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return im.changed
}

// indexAfter returns the index in log of the first event with position > p.
// Callers hold the lock.
func (im *image) indexAfter(p int64) int {
	return sort.Search(len(im.log), func(i int) bool { return im.log[i].Position > p })
}

type filter struct {
	types  map[string]struct{}
	prefix string
	stream string
}

func newFilter(types []string, prefix, stream string) filter {
	f := filter{prefix: prefix, stream: stream}
	if len(types) > 0 {
		f.types = make(map[string]struct{}, len(types))
		for _, t := range types {
			f.types[t] = struct{}{}
		}
	}
	return f
}

func (f filter) match(e *Event) bool {
	if f.stream != "" && e.StreamID != f.stream {
		return false
	}
	if f.prefix != "" && !strings.HasPrefix(e.StreamID, f.prefix) {
		return false
	}
	if f.types != nil {
		if _, ok := f.types[e.Type]; !ok {
			return false
		}
	}
	return true
}

// readAll returns up to limit matching events after position after, and the
// position up to which the log was examined (for cursors that skip
// non-matching events).
func (im *image) readAll(after int64, f filter, limit int) ([]Event, int64) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	scanned := after
	if f.stream != "" {
		st := im.streams[f.stream]
		if st == nil {
			return nil, im.head.Load()
		}
		i := sort.Search(len(st.events), func(i int) bool { return st.events[i].Position > after })
		var out []Event
		for ; i < len(st.events) && len(out) < limit; i++ {
			if f.match(st.events[i]) {
				out = append(out, *st.events[i])
			}
		}
		if len(out) < limit {
			scanned = im.head.Load()
		} else {
			scanned = out[len(out)-1].Position
		}
		return out, scanned
	}
	var out []Event
	for i := im.indexAfter(after); i < len(im.log); i++ {
		e := im.log[i]
		scanned = e.Position
		if f.match(e) {
			out = append(out, *e)
			if len(out) == limit {
				return out, scanned
			}
		}
	}
	return out, im.head.Load()
}

// streamEvents returns a stable view of a stream's event pointers (the
// backing array is append-only, so the slice header is enough).
func (im *image) streamEvents(id string) []*Event {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil {
		return nil
	}
	return st.events[:len(st.events):len(st.events)]
}

// positionAt returns the last position with recordedAt <= t, or 0.
func (im *image) positionAt(t time.Time) int64 {
	im.mu.RLock()
	defer im.mu.RUnlock()
	i := sort.Search(len(im.log), func(i int) bool { return im.log[i].RecordedAt.After(t) })
	if i == 0 {
		return 0
	}
	return im.log[i-1].Position
}

func (im *image) stats() (streams, events int, bytes int64) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return len(im.streams), len(im.log), im.bytes
}
