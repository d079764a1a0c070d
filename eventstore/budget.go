package eventstore

import (
	"context"
	"fmt"
	"sort"
)

// WithMemoryBudget bounds the memory image to about bytes (0, the default,
// means unlimited). The skeleton of the log (heads and a compact index of
// every event, about 45 bytes per event plus about 350 per stream) is never
// evicted; event payloads are, cold streams first. A read of an evicted event
// falls back to an indexed store read. See the package documentation.
func WithMemoryBudget(bytes int64) Option {
	return func(s *Store) error {
		if bytes < 0 {
			return fmt.Errorf("memory budget must not be negative, got %d", bytes)
		}
		s.img.budget = bytes
		return nil
	}
}

// tailKeep is how many of its last versions a hot stream keeps when the
// eviction trims old history.
const tailKeep = 32

// refillShare: a page read from the store is put back into the image only if
// it takes at most budget/refillShare, so one read of old history cannot
// flush the image.
const refillShare = 4

// size is what the image holds, in bytes. Callers hold the lock.
func (im *image) size() int64 { return im.skelBytes + im.payBytes }

// enforce runs an eviction pass when the image is over its budget. Callers
// hold the write lock.
func (im *image) enforce() {
	if im.budget > 0 && im.size() > max(im.budget, im.nextPass) {
		im.evict()
	}
}

// evict brings the image down to 90% of its budget, so passes are rare:
//
//  1. streams not used (read or written) since the previous pass, whole,
//     least recently used first;
//  2. then the old history of the streams used since, all but their last
//     tailKeep versions, least recently used first;
//  3. then those streams whole, least recently used first.
//
// Streams pinned by an append with client ids keep their history (the
// writer's idempotency check reads it without touching the store). Only
// payloads go: the skeleton stays. If the skeleton and the pinned streams
// alone exceed the budget, the next pass waits until the image has grown by
// another tenth of the budget, so appends do not pay for a pass each.
// Callers hold the write lock.
func (im *image) evict() {
	target := im.budget - im.budget/10
	var cands []*streamEntry
	for _, st := range im.streams {
		if st.resident > 0 && st.pins == 0 {
			cands = append(cands, st)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used.Load() < cands[j].used.Load() })
	mark := im.hotMark
	im.hotMark = im.clock.Load()
	defer func() { im.nextPass = im.size() + im.budget/10 }()
	hot := sort.Search(len(cands), func(i int) bool { return cands[i].used.Load() > mark })
	for _, st := range cands[:hot] {
		if im.size() <= target {
			return
		}
		im.trim(st, st.version)
	}
	for _, st := range cands[hot:] {
		if im.size() <= target {
			return
		}
		im.trim(st, st.version-tailKeep)
	}
	for _, st := range cands[hot:] {
		if im.size() <= target {
			return
		}
		im.trim(st, st.version)
	}
}

// trim evicts the payloads of versions up to v of st. The kept window is
// copied to a new slice, so the evicted events are not held by the old one.
// Callers hold the write lock.
func (im *image) trim(st *streamEntry, v int64) {
	if st.events == nil || v < st.first {
		return
	}
	cut := int(min(v-st.first+1, int64(len(st.events))))
	for _, e := range st.events[:cut] {
		if e != nil {
			im.payBytes -= eventBytes(e)
			st.resident--
			im.resident--
			im.evicted++
		}
	}
	rest := st.events[cut:]
	skip := 0
	for skip < len(rest) && rest[skip] == nil {
		skip++
	}
	rest = rest[skip:]
	if len(rest) == 0 {
		im.grow(st, nil)
		st.first = st.version + 1
		return
	}
	st.first += int64(cut + skip)
	im.grow(st, append([]*Event(nil), rest...))
}

// fill puts events of one stream read from the store back into the image:
// only versions the skeleton has, at the positions it has, that are not
// resident. Unless force, it does nothing when they would take more than
// budget/refillShare. It may run an eviction pass.
func (im *image) fill(id string, evs []Event, force bool) {
	if len(evs) == 0 {
		return
	}
	var size int64
	for i := range evs {
		size += eventBytes(&evs[i])
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if !force && im.budget > 0 && size > im.budget/refillShare {
		return
	}
	st := im.streams[id]
	if st == nil {
		return
	}
	own := make([]Event, len(evs)) // the caller keeps evs
	copy(own, evs)
	for i := range own {
		e := &own[i]
		if e.Version < 1 || e.Version > st.version {
			continue
		}
		sl := im.versionSlot(st, e.Version)
		if sl.position != e.Position || im.types[sl.typ] != e.Type || st.payload(e.Version) != nil {
			continue
		}
		e.StreamID, e.Type = st.id, im.types[sl.typ]
		im.widen(st, e.Version)
		st.events[e.Version-st.first] = e
		st.resident++
		im.resident++
		im.payBytes += eventBytes(e)
	}
	im.touch(st)
	im.enforce()
}

// widen makes st's window start at version v or before. Callers hold the
// write lock.
func (im *image) widen(st *streamEntry, v int64) {
	if st.events != nil && v >= st.first {
		return
	}
	if st.events == nil {
		st.first = st.version + 1
	}
	w := make([]*Event, st.version-v+1)
	copy(w[st.first-v:], st.events)
	im.grow(st, w)
	st.first = v
}

// pin keeps a stream's whole history resident until unpin, creating an
// empty entry for a stream that has no events yet (so its first events stay
// too). It returns the highest version that is not resident (0 when all
// are): the caller loads versions 1..that from the store.
func (im *image) pin(id string) (*streamEntry, int64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	st := im.streams[id]
	if st == nil {
		st = im.newStream(id)
	}
	st.pins++
	im.touch(st)
	switch {
	case st.complete():
		return st, 0
	case st.events == nil:
		return st, st.version
	case st.resident == len(st.events):
		return st, st.first - 1
	}
	for i := len(st.events) - 1; ; i-- {
		if st.events[i] == nil {
			return st, st.first + int64(i)
		}
	}
}

func (im *image) unpin(st *streamEntry) {
	im.mu.Lock()
	defer im.mu.Unlock()
	st.pins--
	if st.pins == 0 && im.skelBytes < im.budget-im.budget/10 {
		// A pass that found this stream pinned may have stopped above the
		// budget and put the next one off by a tenth of it (evict); now
		// that the stream can go, the image can get back under the budget,
		// so let the next check run a pass at once instead of letting the
		// image grow that tenth first.
		im.nextPass = 0
	}
	im.dropIfEmpty(st)
	im.enforce()
}

// pinHistory makes a stream's whole history resident and keeps it so until
// the returned function is called. Append calls it before it queues an
// append with client ids: the writer looks those ids up in the history while
// it plans, where it must not read the store.
func (s *Store) pinHistory(ctx context.Context, id string) (func(), error) {
	st, upTo := s.img.pin(id)
	unpin := func() { s.img.unpin(st) }
	if upTo == 0 {
		return unpin, nil
	}
	s.stats.misses.Add(1)
	evs, err := s.fetchStream(ctx, id, 1, 1, upTo, 0)
	if err != nil {
		unpin()
		return nil, err
	}
	s.img.fill(id, evs, true)
	return unpin, nil
}
