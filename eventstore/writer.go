package eventstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxBatchBytes keeps one group commit well under MongoDB's 48 MB message limit.
const maxBatchBytes = 16 << 20

// A batch is re-planned after conflicts with other processes at least
// minAttempts times, and then until it has taken the op timeout.
const minAttempts = 16

type appendReq struct {
	ctx       context.Context
	stream    string
	expected  ExpectedState
	events    []NewEvent
	clientIDs bool
	synced    bool // the log was re-read for this request after a conflict
	size      int
	done      chan appendResp
}

type appendResp struct {
	res AppendResult
	err error
}

func (r *appendReq) reply(res AppendResult, err error) { r.done <- appendResp{res, err} }

// Append appends events to a stream if it is in the expected state, and
// returns the new version and positions. It is all-or-nothing. Appends from
// concurrent callers share round trips to the store (group commit); the
// result is returned only once the events are durable there and visible in
// the memory image.
//
// Sending the same append again (same event ids, at the same versions)
// writes nothing and returns the original result. A nil expected is Any.
func (s *Store) Append(ctx context.Context, streamID string, expected ExpectedState, events ...NewEvent) (AppendResult, error) {
	if err := s.checkOpen(); err != nil {
		return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: err}
	}
	if expected == nil {
		expected = Any{}
	}
	if e, ok := expected.(Exact); ok && e < 0 {
		return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: invalid("expected version must not be negative")}
	}
	evs, err := prepare(streamID, events)
	if err != nil {
		return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: err}
	}
	req := &appendReq{ctx: ctx, stream: streamID, expected: expected, events: evs, done: make(chan appendResp, 1)}
	for i, e := range evs {
		req.size += len(e.Data) + len(e.Metadata) + 256
		if events[i].ID != "" {
			req.clientIDs = true
		}
	}
	// The writer checks client ids against the stream's history while it
	// plans, from memory (guarantee 3): load the history now if it was
	// evicted, and keep it until the append is answered.
	unpin := func() {}
	if req.clientIDs {
		if unpin, err = s.pinHistory(ctx, streamID); err != nil {
			return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: err}
		}
	}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		unpin()
		return AppendResult{}, ctx.Err()
	case <-s.ctx.Done():
		unpin()
		return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: ErrClosed}
	}
	// Once queued, the append may be written even if ctx ends; the caller
	// then does not know the outcome and may resend it (idempotency).
	select {
	case r := <-req.done:
		unpin()
		if r.err != nil {
			return AppendResult{}, &Error{Op: "append", StreamID: streamID, Err: r.err}
		}
		return s.withReceipt(r.res), nil
	case <-ctx.Done():
		if req.clientIDs {
			// The writer may still plan it: unpin once it is answered.
			go func() {
				select {
				case <-req.done:
				case <-s.ctx.Done():
				}
				unpin()
			}()
		}
		return AppendResult{}, ctx.Err()
	}
}

func (s *Store) runWriter() {
	dirty := false
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.ctx.Done():
			s.failQueued()
			return
		}
		batch, size := []*appendReq{first}, first.size
	drain:
		for len(batch) < s.maxBatch && size < maxBatchBytes {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
				size += r.size
			default:
				break drain
			}
		}
		if s.down.Load() {
			// The last round trip found the store unreachable: fail fast
			// until the prober reaches it again, rather than have every
			// append wait out its own timeout.
			for _, r := range batch {
				r.reply(AppendResult{}, fmt.Errorf("%w: the store did not answer; retry shortly", ErrStoreUnavailable))
			}
			continue
		}
		dirty = s.commitBatch(batch, dirty)
	}
}

func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.reqs:
			r.reply(AppendResult{}, ErrClosed)
		default:
			return
		}
	}
}

// planned is one append ready to be written.
type planned struct {
	req    *appendReq
	events []Event
}

// streamCursor is a stream's state as seen while planning a batch: the image
// plus the appends planned earlier in the same batch.
type streamCursor struct {
	version int64
	hash    string
	planned [][]Event // the appends planned earlier, as planned (not copied)
}

// commitBatch writes one batch and replies to every request in it. It
// returns whether the image may be behind the store (after an unknown
// outcome), so the next batch reads the log first.
func (s *Store) commitBatch(batch []*appendReq, dirty bool) bool {
	start := time.Now()
	pending := batch
	conflict := false // the last round lost a position or version to another writer
	total := 0
	for _, r := range batch {
		total += len(r.events)
	}
	mine := make(map[string]held, total) // event ids reserved in this group commit, not yet written
	defer s.stopContending()
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt >= minAttempts && time.Since(start) > s.opTimeout {
			for _, r := range pending {
				r.reply(AppendResult{}, fmt.Errorf("%w: too much contention from other writers", ErrStoreUnavailable))
			}
			return dirty
		}
		if dirty || attempt > 0 {
			// Another process wrote what we planned to write (or we don't
			// know what we wrote): learn the current log before re-planning.
			if err := s.relearn(conflict, dirty, attempt); err != nil {
				s.stats.storeErrors.Add(1)
				s.storeFailed(err)
				for _, r := range pending {
					r.reply(AppendResult{}, err)
				}
				return true
			}
			dirty = false
		}
		conflict = false
		writes, deferred := s.plan(pending)
		if len(writes) == 0 {
			if len(deferred) == 0 {
				return dirty
			}
			pending = deferred
			continue
		}
		// Reserve the event ids before writing the commits that hold them
		// (eventids.go): the store keeps them unique in the whole log.
		kept, err := s.reserve(writes, mine)
		if err != nil {
			// Nothing of the commits is written; reservations that were
			// are bound to these slots and this content, so a retry of the
			// same append takes them up.
			s.stats.storeErrors.Add(1)
			s.storeFailed(err)
			for _, w := range writes {
				w.req.reply(AppendResult{}, err)
			}
			pending = deferred
			continue
		}
		if len(kept) < len(writes) {
			// Some were answered: the positions planned after them would
			// leave a hole. Plan the rest again.
			pending = deferred
			for _, w := range kept {
				pending = append(pending, w.req)
			}
			continue
		}
		commits := make([]*commitDoc, len(writes))
		nEvents := 0
		for i, w := range writes {
			commits[i] = toDoc(w.events)
			nEvents += len(w.events)
		}
		docs := s.arena.docs(commits)
		s.holdBack()
		ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
		_, err = s.commits.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
		cancel()
		s.stats.batches.Add(1)
		inserted := len(writes)
		var bwe mongo.BulkWriteException
		if err != nil {
			if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || bwe.WriteConcernError != nil {
				// Unknown outcome: some or all may be stored. Fail them; the
				// next batch re-reads the log, and a client resending with
				// the same ids gets the original result.
				s.stats.storeErrors.Add(1)
				s.log.Warn("group commit failed", "appends", len(writes), "err", err)
				err = classify(err)
				s.storeFailed(err)
				for _, w := range writes {
					w.req.reply(AppendResult{}, err)
				}
				return true
			}
			inserted = bwe.WriteErrors[0].Index // ordered: everything before it is stored
		}
		for _, w := range writes[:inserted] {
			for i := range w.events {
				delete(mine, w.events[i].ID) // written: no longer ours to move
			}
			if r := s.img.apply(w.events, false); r == gap {
				// Cannot happen: we planned from head. Be loud, stay correct.
				s.log.Error("own commit does not follow head; re-reading log", "position", w.events[0].Position)
				dirty = true
			}
		}
		if inserted > 0 {
			s.stats.batched.Add(uint64(inserted))
			s.recent.add(commits[:inserted])
			s.contending.Store(false) // the announce below withdraws it
			if s.mustAnnounce() {
				// Announce before acknowledging, so that a peer that
				// reads our beacon knows every commit we acknowledged
				// (Sync relies on it). If this fails the commits are
				// still durable; the heartbeat announces them later.
				actx, acancel := context.WithTimeout(context.Background(), s.opTimeout)
				if aerr := s.announce(actx, false); aerr != nil {
					s.log.Warn("could not announce commits to peers", "err", aerr)
				}
				acancel()
			}
		}
		for _, w := range writes[:inserted] {
			s.stats.appends.Add(1)
			w.req.reply(resultOf(w.events), nil)
		}
		if s.batchObserver != nil {
			s.batchObserver(len(writes), nEvents, time.Since(start))
		}
		if err == nil {
			pending = deferred
			continue
		}
		failed := writes[inserted]
		conflict = mongo.IsDuplicateKeyError(err)
		if !conflict {
			s.stats.storeErrors.Add(1)
			failed.req.reply(AppendResult{}, fmt.Errorf("store rejected the append: %w", err))
			writes = writes[inserted+1:]
		} else {
			writes = writes[inserted:]
		}
		pending = deferred
		for _, w := range writes {
			pending = append(pending, w.req)
		}
	}
	return dirty
}

// plan checks each request against the image plus the requests planned
// before it, replies at once to those that fail or are idempotent replays,
// and assigns versions, positions, time and hashes to the rest.
//
// A request that repeats one planned earlier in the same batch is deferred to
// the next round, once it is known whether the first one was written.
func (s *Store) plan(reqs []*appendReq) (out []planned, deferred []*appendReq) {
	s.img.mu.RLock()
	defer s.img.mu.RUnlock()
	next := s.img.head.Load() + 1
	// recordedAt never decreases with position (guarantee 4): a writer only
	// writes after the head it has seen, so it never stamps earlier than it.
	now := time.Now().UTC()
	if now.Before(s.img.headTime) {
		now = s.img.headTime
	}
	cursors := map[string]*streamCursor{}
	var hasher chainHasher // one for the batch: hashed each on its own, 1,000 events allocated 0.5 MB
	for _, r := range reqs {
		if r.ctx.Err() != nil {
			r.reply(AppendResult{}, r.ctx.Err())
			continue
		}
		c := cursors[r.stream]
		if c == nil {
			c = &streamCursor{}
			c.version, c.hash = s.img.tipLocked(r.stream) // the skeleton: never evicted
			cursors[r.stream] = c
		}
		if r.clientIDs {
			res, err, found := s.replay(r, c)
			if errors.Is(err, errPlannedInBatch) {
				deferred = append(deferred, r)
				continue
			}
			if found {
				r.reply(res, err)
				continue
			}
		}
		if e, ok := r.expected.(Exact); ok && int64(e) > c.version && !r.synced && len(c.planned) == 0 {
			// The caller has seen a version we have not: another instance
			// wrote it. Re-read the log before judging.
			r.synced = true
			deferred = append(deferred, r)
			continue
		}
		if !satisfied(r.expected, c.version) {
			s.stats.conflicts.Add(1)
			r.reply(AppendResult{}, &WrongExpectedVersionError{StreamID: r.stream, Expected: r.expected, Actual: c.version})
			continue
		}
		evs := make([]Event, len(r.events))
		for i, ne := range r.events {
			c.version++
			e := Event{ID: ne.ID, StreamID: r.stream, Version: c.version, Position: next, Type: ne.Type,
				Data: ne.Data, Metadata: ne.Metadata, RecordedAt: now}
			e.Hash = hasher.eventHash(c.hash, &e)
			c.hash = e.Hash
			next++
			evs[i] = e
		}
		c.planned = append(c.planned, evs)
		out = append(out, planned{req: r, events: evs})
	}
	return out, deferred
}

var errPlannedInBatch = errors.New("repeats an append planned in the same batch")

// replay looks for the request's event ids in the stream. found is false when
// none of them is stored (a normal append). Callers hold the image lock.
//
// Append pinned the stream's whole history in the image before it queued
// the request (pinHistory), so the lookup needs no store read. Should the
// history be incomplete anyway, the request fails rather than risk writing
// a duplicate.
func (s *Store) replay(r *appendReq, c *streamCursor) (AppendResult, error, bool) {
	var history []*Event
	if st := s.img.streams[r.stream]; st != nil {
		if !st.complete() {
			return AppendResult{}, fmt.Errorf("%w: the history of the stream is not in memory; retry", ErrStoreUnavailable), true
		}
		history = st.events
	}
	lookup := func(id string) *Event {
		for i := len(history) - 1; i >= 0; i-- {
			if history[i].ID == id {
				return history[i]
			}
		}
		return nil
	}
	for _, ne := range r.events {
		for _, evs := range c.planned {
			for i := range evs {
				if evs[i].ID == ne.ID {
					return AppendResult{}, errPlannedInBatch, true
				}
			}
		}
	}
	first := lookup(r.events[0].ID)
	if first == nil {
		for _, ne := range r.events[1:] {
			if lookup(ne.ID) != nil {
				return AppendResult{}, fmt.Errorf("%w: event %s is already stored in this stream", ErrDuplicateEventID, ne.ID), true
			}
		}
		return AppendResult{}, nil, false
	}
	orig := make([]Event, len(r.events))
	for i, ne := range r.events {
		e := lookup(ne.ID)
		if e == nil || e.Version != first.Version+int64(i) || e.Type != ne.Type ||
			!bytes.Equal(e.Data, ne.Data) || !bytes.Equal(e.Metadata, ne.Metadata) {
			return AppendResult{}, fmt.Errorf("%w: event %s", ErrDuplicateEventID, ne.ID), true
		}
		orig[i] = *e
	}
	return resultOf(orig), nil, true
}

func resultOf(events []Event) AppendResult {
	return AppendResult{
		StreamID:            events[0].StreamID,
		NextExpectedVersion: events[len(events)-1].Version,
		FirstPosition:       events[0].Position,
		LastPosition:        events[len(events)-1].Position,
		Events:              events,
	}
}
