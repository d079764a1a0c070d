package eventstore

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// image is the memory image of the log, in two layers (see the package
// documentation for why):
//
//   - The skeleton, never evicted: every stream's head (version, last
//     position, last hash, created and updated times), each stream's map
//     from version to log index, and a compact index of the whole log in
//     position order, one 40-byte slot per event (stream, position, version,
//     type, recordedAt). Heads, points in time, version resolution, the
//     writer's planning and subscription cursors need nothing else.
//   - Payloads, evictable: the full Events of each stream, as a window of
//     versions first..version in which nil entries are not resident. A
//     budget bounds the two together (budget.go).
//
// It is fed only with commits that are durable in the store, strictly in
// position order, so it is never ahead of the store (guarantee 8) and its
// skeleton is always a prefix of the log.
type image struct {
	mu       sync.RWMutex
	chunks   [][]slot // the log index in position order, chunkSize slots per chunk
	n        int      // slots in chunks
	streams  map[string]*streamEntry
	nStreams int // entries with at least one event (a pin can create an empty one)
	types    []string
	typeIdx  map[string]uint32
	big      []bigCommit // commits above smallCommitBytes, in position order (reads.go)
	headTime time.Time
	changed  chan struct{} // closed and replaced whenever head advances
	batch    *waker        // wakes batched subscriptions (wake.go)
	observer func([]Event) // told of every applied commit, in position order (observe.go)

	// Accounting and eviction, guarded by mu (written under the write lock).
	budget    int64  // bytes; 0 = unlimited
	skelBytes int64  // skeleton
	payBytes  int64  // payloads
	resident  int    // events whose payload is held
	evicted   uint64 // payloads evicted so far
	hotMark   uint64 // clock at the end of the previous eviction pass
	nextPass  int64  // size above which the next eviction pass runs

	clock atomic.Uint64 // use clock for streams' LRU order; advanced by reads too
	head  atomic.Int64  // highest applied position; read without the lock
}

// slot is one event in the log index: enough to place it in the global
// order, in its stream and in time without its payload. off locates the
// commit document that holds the event (its _id is position-off and its
// version field version-off), so a miss reads exactly from there.
type slot struct {
	st       *streamEntry
	position int64
	version  int64
	at       int64  // recordedAt, Unix nanoseconds
	typ      uint32 // index into image.types
	off      uint32 // index of the event in its commit
}

type streamEntry struct {
	id       string
	version  int64 // last version; 0 for an entry that only holds pins
	lastPos  int64
	lastHash string
	created  int64    // recordedAt of version 1, Unix ns
	updated  int64    // recordedAt of the last version, Unix ns
	idx      []uint32 // log index of version v at v-1

	// Payloads: events[i] is version first+i; the window always ends at
	// version when it is not nil. nil entries are not resident.
	first    int64
	events   []*Event
	resident int // non-nil entries of events
	pins     int // appends with client ids that need the whole history; guarded by the write lock

	used atomic.Uint64 // image clock at the last read or write
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// Sizes used by the accounting; see allocSize.
var (
	slotSize  = int64(unsafe.Sizeof(slot{}))
	eventSize = allocSize(int(unsafe.Sizeof(Event{})))
	entrySize = allocSize(int(unsafe.Sizeof(streamEntry{})))
)

// mapSlotBytes is what one entry of a map[string]pointer costs, with the
// load factor's slack.
const mapSlotBytes = 40

func newImage() *image {
	return &image{streams: make(map[string]*streamEntry), typeIdx: make(map[string]uint32), changed: make(chan struct{}),
		batch: newWaker()}
}

// eventBytes is what a resident event costs: its share of the commit's
// []Event array (rounded to the allocator's size class) and its ID, data,
// metadata and hash. Its type and stream id are shared strings, and the
// pointer to it is counted with its stream's window.
func eventBytes(e *Event) int64 {
	return eventSize + allocSize(len(e.ID)) + allocSize(cap(e.Data)) + allocSize(cap(e.Metadata)) + allocSize(len(e.Hash))
}

// sizeClasses are the Go allocator's small size classes (internal/runtime/gc).
var sizeClasses = [...]int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
	2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880,
	12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// allocSize is what the allocator hands out for n bytes.
func allocSize(n int) int64 {
	switch {
	case n <= 0:
		return 0
	case n > sizeClasses[len(sizeClasses)-1]:
		return int64((n + 8191) &^ 8191)
	}
	return int64(sizeClasses[sort.SearchInts(sizeClasses[:], n)])
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
// applies it anyway, for the bounded wait of guarantee 5. The image keeps
// pointers into events.
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
	tick := im.clock.Add(1)
	for i := range events {
		e := &events[i]
		st := im.streams[e.StreamID]
		if st == nil {
			st = im.newStream(e.StreamID)
		}
		e.StreamID = st.id // share one string per stream
		typ := im.intern(e.Type)
		e.Type = im.types[typ]
		at := e.RecordedAt.UnixNano()
		li := im.addSlot(slot{st: st, position: e.Position, version: e.Version, at: at, typ: typ, off: uint32(i)})
		oldCap := cap(st.idx)
		st.idx = append(st.idx, uint32(li))
		im.skelBytes += allocSize(cap(st.idx)*4) - allocSize(oldCap*4)
		if st.version == 0 {
			st.created = at
			im.nStreams++
		}
		if st.events == nil {
			st.first = e.Version
		}
		st.version, st.lastPos, st.lastHash, st.updated = e.Version, e.Position, e.Hash, at
		im.grow(st, append(st.events, e))
		st.resident++
		im.resident++
		im.payBytes += eventBytes(e)
		st.used.Store(tick)
	}
	im.observe(events)
	im.noteSize(events)
	last := events[len(events)-1]
	im.headTime = last.RecordedAt
	im.head.Store(last.Position)
	close(im.changed)
	im.changed = make(chan struct{})
	im.batch.notify()
	im.enforce()
	return applied
}

func (im *image) newStream(id string) *streamEntry {
	st := &streamEntry{id: id}
	im.streams[id] = st
	im.skelBytes += entrySize + allocSize(len(id)) + mapSlotBytes + allocSize(64) // 64: the last hash
	return st
}

// dropIfEmpty removes an entry that only held pins.
func (im *image) dropIfEmpty(st *streamEntry) {
	if st.version == 0 && st.pins == 0 && im.streams[st.id] == st {
		delete(im.streams, st.id)
		im.skelBytes -= entrySize + allocSize(len(st.id)) + mapSlotBytes + allocSize(64)
	}
}

// grow replaces a stream's window slice, accounting for its capacity.
func (im *image) grow(st *streamEntry, events []*Event) {
	im.payBytes += allocSize(cap(events)*8) - allocSize(cap(st.events)*8)
	st.events = events
}

func (im *image) intern(t string) uint32 {
	if i, ok := im.typeIdx[t]; ok {
		return i
	}
	i := uint32(len(im.types))
	im.types = append(im.types, t)
	im.typeIdx[t] = i
	im.skelBytes += allocSize(len(t)) + mapSlotBytes + 16
	return i
}

// addSlot appends to the log index and returns the slot's index. Chunks grow
// by doubling up to chunkSize and are never copied after that, so the index
// of a large log has no slack beyond its last chunk.
func (im *image) addSlot(s slot) int {
	last := len(im.chunks) - 1
	if last < 0 || len(im.chunks[last]) == chunkSize {
		im.chunks = append(im.chunks, nil)
		last++
	}
	c := im.chunks[last]
	if len(c) == cap(c) {
		nc := make([]slot, len(c), min(max(2*cap(c), 16), chunkSize))
		copy(nc, c)
		im.skelBytes += allocSize(cap(nc)*int(slotSize)) - allocSize(cap(c)*int(slotSize))
		c = nc
	}
	im.chunks[last] = append(c, s)
	im.n++
	return im.n - 1
}

// slotAt returns the i-th slot of the log. Callers hold the lock.
func (im *image) slotAt(i int) *slot { return &im.chunks[i>>chunkBits][i&(chunkSize-1)] }

// versionSlot returns the slot of version v (1..version) of st. Callers hold the lock.
func (im *image) versionSlot(st *streamEntry, v int64) *slot { return im.slotAt(int(st.idx[v-1])) }

// payload returns version v of st if it is resident. Callers hold the lock.
func (st *streamEntry) payload(v int64) *Event {
	i := v - st.first
	if st.events == nil || i < 0 || i >= int64(len(st.events)) {
		return nil
	}
	return st.events[i]
}

// complete reports whether every version of st is resident.
func (st *streamEntry) complete() bool {
	return st.version == 0 || (st.first == 1 && st.resident == len(st.events) && int64(len(st.events)) == st.version)
}

// touch marks st as used now, for the LRU order of eviction. It is safe
// under the read lock.
func (im *image) touch(st *streamEntry) { st.used.Store(im.clock.Add(1)) }

// wait returns a channel closed when head next advances.
func (im *image) wait() <-chan struct{} {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return im.changed
}

// indexAfter returns the index in the log of the first event with position > p.
// Callers hold the lock.
func (im *image) indexAfter(p int64) int {
	return sort.Search(im.n, func(i int) bool { return im.slotAt(i).position > p })
}

// has reports whether the log holds position p.
func (im *image) has(p int64) bool {
	_, ok := im.recordedAt(p)
	return ok
}

// recordedAt returns the recordedAt of position p, if the log holds it.
func (im *image) recordedAt(p int64) (time.Time, bool) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	i := im.indexAfter(p - 1)
	if i == im.n || im.slotAt(i).position != p {
		return time.Time{}, false
	}
	return time.Unix(0, im.slotAt(i).at).UTC(), true
}

type filter struct {
	types  map[string]struct{}
	prefix string
	any    []string // one of these prefixes too, when not empty
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

func (f filter) match(e *Event) bool { return f.matches(e.StreamID, e.Type) }

func (f filter) matches(stream, typ string) bool {
	if f.stream != "" && stream != f.stream {
		return false
	}
	if f.prefix != "" && !strings.HasPrefix(stream, f.prefix) {
		return false
	}
	if len(f.any) > 0 && !slices.ContainsFunc(f.any, func(p string) bool { return strings.HasPrefix(stream, p) }) {
		return false
	}
	if f.types != nil {
		if _, ok := f.types[typ]; !ok {
			return false
		}
	}
	return true
}

// logPage walks the log after position after and returns up to limit
// matching events: those resident in out, and the slots of those that are
// not in miss, both in position order. scanned is the position up to which
// the log was examined (for cursors that skip non-matching events). A global
// walk does not count as use of the streams it passes. The events are
// appended to buf, so a subscription can reuse one buffer: with thousands of
// live subscribers, a fresh page per subscriber per commit was a large share
// of fan-out's allocations.
func (im *image) logPage(after int64, f filter, limit int, buf []Event) (out []Event, miss []slot, scanned int64) {
	out = buf
	im.mu.RLock()
	defer im.mu.RUnlock()
	take := func(sl *slot) bool {
		if !f.matches(sl.st.id, im.types[sl.typ]) {
			return false
		}
		if e := sl.st.payload(sl.version); e != nil {
			out = append(out, *e)
		} else {
			miss = append(miss, *sl)
		}
		return len(out)+len(miss) == limit
	}
	if f.stream != "" {
		st := im.streams[f.stream]
		if st == nil {
			return out, nil, im.head.Load()
		}
		i := sort.Search(len(st.idx), func(i int) bool { return im.slotAt(int(st.idx[i])).position > after })
		for ; i < len(st.idx); i++ {
			if sl := im.slotAt(int(st.idx[i])); take(sl) {
				return out, miss, sl.position
			}
		}
		return out, miss, im.head.Load()
	}
	for i := im.indexAfter(after); i < im.n; i++ {
		if sl := im.slotAt(i); take(sl) {
			return out, miss, sl.position
		}
	}
	return out, miss, im.head.Load()
}

// streamPage serves a page of one stream from memory. lo..hi are the
// versions it covers (none when lo > hi). If one of them is not resident, ok
// is false and from is the version at which the commit holding lo starts:
// the store read for the page starts there.
func (im *image) streamPage(id string, o ReadStreamOptions, limit int) (out []Event, lo, hi, from int64, ok bool) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil || st.version == 0 {
		return nil, 1, 0, 0, true
	}
	n := st.version
	if o.Backward {
		hi = n
		if o.From > 0 {
			hi = min(o.From-1, n)
		}
		lo = max(1, hi-int64(limit)+1)
	} else {
		lo, hi = o.From+1, min(n, o.From+int64(limit))
	}
	if lo > hi {
		return nil, lo, hi, 0, true
	}
	im.touch(st)
	out = make([]Event, 0, hi-lo+1)
	for v := lo; v <= hi; v++ {
		e := st.payload(v)
		if e == nil {
			return nil, lo, hi, lo - int64(im.versionSlot(st, lo).off), false
		}
		out = append(out, *e)
	}
	if o.Backward {
		reverse(out)
	}
	return out, lo, hi, 0, true
}

func reverse(evs []Event) {
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
}

// headOf returns a stream's head from the skeleton.
func (im *image) headOf(id string) (StreamHead, bool) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil || st.version == 0 {
		return StreamHead{}, false
	}
	return StreamHead{StreamID: st.id, Version: st.version, Position: st.lastPos,
		CreatedAt: time.Unix(0, st.created).UTC(), UpdatedAt: time.Unix(0, st.updated).UTC()}, true
}

// tip returns a stream's last version and hash (0 and "" when it has none).
func (im *image) tip(id string) (int64, string) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return im.tipLocked(id)
}

func (im *image) tipLocked(id string) (int64, string) {
	if st := im.streams[id]; st != nil {
		return st.version, st.lastHash
	}
	return 0, ""
}

// resolve returns the version a stream had at a point, from the skeleton.
func (im *image) resolve(id string, at At) int64 {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil {
		return 0
	}
	n := int(st.version)
	switch at.kind {
	case atVersion:
		return max(0, min(at.version, int64(n)))
	case atPosition:
		return int64(sort.Search(n, func(i int) bool { return im.slotAt(int(st.idx[i])).position > at.position }))
	case atTime:
		t := nanos(at.time)
		return int64(sort.Search(n, func(i int) bool { return im.slotAt(int(st.idx[i])).at > t }))
	}
	return int64(n)
}

// positionOf returns the position of version v of a stream, if it has one.
func (im *image) positionOf(id string, v int64) (int64, bool) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil || v < 1 || v > st.version {
		return 0, false
	}
	return im.versionSlot(st, v).position, true
}

// positionAt returns the last position with recordedAt <= t, or 0.
func (im *image) positionAt(t time.Time) int64 {
	im.mu.RLock()
	defer im.mu.RUnlock()
	ns := nanos(t)
	i := sort.Search(im.n, func(i int) bool { return im.slotAt(i).at > ns })
	if i == 0 {
		return 0
	}
	return im.slotAt(i - 1).position
}

// nanos is t in Unix nanoseconds, saturated: UnixNano is undefined outside
// the years 1678 to 2262, and callers may ask for any time.
func nanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// imageStats is the image's part of Stats.
type imageStats struct {
	streams, logEvents, resident int
	bytes, skeleton, budget      int64
	evicted                      uint64
}

func (im *image) stats() imageStats {
	im.mu.RLock()
	defer im.mu.RUnlock()
	return imageStats{streams: im.nStreams, logEvents: im.n, resident: im.resident,
		bytes: im.skelBytes + im.payBytes, skeleton: im.skelBytes, budget: im.budget, evicted: im.evicted}
}
