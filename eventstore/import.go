package eventstore

import (
	"context"
	"encoding/json"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrNotEmpty: Import was asked to start a log in a store that already has
// one.
var ErrNotEmpty = errors.New("the store is not empty")

// Import limits of one commit document written by Import.
const (
	importMaxEvents = 1000
	importMaxBytes  = 4 << 20
)

// Import writes events exported from another store (a backup) exactly as
// they were: ids, versions, positions, recordedAt and hashes are kept. It is
// for restoring into an empty store that nothing else writes to meanwhile.
//
// events must continue the log: the first one has position HeadPosition()+1
// (so the first call on an empty store starts at position 1, and a store that
// has events refuses a log that starts at 1 with ErrNotEmpty), positions are
// consecutive, recordedAt never decreases, and each stream's versions follow
// its previous event. Every hash is recomputed and checked against the chain
// as it goes, so a file altered, truncated in the middle of a stream or
// reordered is refused with ErrInvalidArgument naming the position, and
// nothing of that call is written.
//
// Calls may be repeated with the next events (a large log is imported in
// pages). Consecutive events of one stream with the same recordedAt are
// stored in one commit document, the unit the store writes atomically.
func (s *Store) Import(ctx context.Context, events []Event) error {
	if err := s.checkOpen(); err != nil {
		return &Error{Op: "import", Err: err}
	}
	if len(events) == 0 {
		return nil
	}
	// Keep the tailer out while the image and the store disagree.
	s.pullMu.Lock()
	defer s.pullMu.Unlock()

	head := s.img.head.Load()
	if head == 0 {
		err := s.commits.FindOne(ctx, bson.D{}).Err()
		switch {
		case err == nil:
			return &Error{Op: "import", Err: ErrNotEmpty}
		case !errors.Is(err, mongo.ErrNoDocuments):
			return &Error{Op: "import", Err: classify(err)}
		}
		// Without commits, every id reservation is a leftover of an
		// append or import that wrote nothing.
		if _, err := s.ids.DeleteMany(ctx, bson.D{}); err != nil {
			return &Error{Op: "import", Err: classify(err)}
		}
	}
	if p := events[0].Position; p != head+1 {
		if p == 1 {
			return &Error{Op: "import", Err: ErrNotEmpty}
		}
		return &Error{Op: "import", Err: invalid("the events start at position %d, the store continues at %d", p, head+1)}
	}
	docs, err := s.importDocs(head, events)
	if err != nil {
		return &Error{Op: "import", Err: err}
	}
	if err := s.importIDs(ctx, events); err != nil {
		return &Error{Op: "import", Err: err}
	}
	models := make([]any, len(docs))
	for i := range docs {
		models[i] = docs[i]
	}
	if _, err := s.commits.InsertMany(ctx, models, options.InsertMany().SetOrdered(true)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return &Error{Op: "import", Err: ErrNotEmpty}
		}
		return &Error{Op: "import", Err: classify(err)}
	}
	for i := range docs {
		s.img.apply(docs[i].events(), false)
	}
	return nil
}

// importDocs checks events against the image and each other and groups them
// into commit documents.
func (s *Store) importDocs(head int64, events []Event) ([]*commitDoc, error) {
	chain := &ChainVerifier{tips: map[string]chainTip{}, before: func(stream string) chainTip {
		v, h := s.img.tip(stream)
		return chainTip{v, h}
	}}
	s.img.mu.RLock()
	lastAt := s.img.headTime
	s.img.mu.RUnlock()

	var docs []*commitDoc
	var group []Event
	groupBytes := 0
	flush := func() {
		if len(group) > 0 {
			docs = append(docs, toDoc(group))
			group, groupBytes = nil, 0
		}
	}
	for i := range events {
		e := events[i]
		at := e.Position
		switch {
		case e.Position != head+1+int64(i):
			return nil, invalid("position %d: want %d; positions must be consecutive", at, head+1+int64(i))
		case ValidateStreamID(e.StreamID) != nil:
			return nil, invalid("position %d: %v", at, ValidateStreamID(e.StreamID))
		case e.ID == "" || e.Type == "":
			return nil, invalid("position %d: an event needs an id and a type", at)
		case !json.Valid(e.Data) || (len(e.Metadata) > 0 && !json.Valid(e.Metadata)):
			return nil, invalid("position %d: data or metadata is not valid JSON", at)
		case e.RecordedAt.Before(lastAt):
			return nil, invalid("position %d: recordedAt goes back in time", at)
		}
		e.RecordedAt = e.RecordedAt.UTC()
		if err := chain.Check(&e); err != nil {
			return nil, err
		}
		lastAt = e.RecordedAt

		size := len(e.ID) + len(e.Type) + len(e.Data) + len(e.Metadata) + len(e.Hash)
		if len(group) > 0 {
			prev := group[len(group)-1]
			if prev.StreamID != e.StreamID || !prev.RecordedAt.Equal(e.RecordedAt) ||
				len(group) >= importMaxEvents || groupBytes+size > importMaxBytes {
				flush()
			}
		}
		group = append(group, e)
		groupBytes += size
	}
	flush()
	return docs, nil
}

// importIDs reserves the ids of imported events, each for its place, so that
// they are unique in the whole log as appended ones are (eventids.go). An
// id already used, in the file or in the store, is ErrInvalidArgument.
func (s *Store) importIDs(ctx context.Context, events []Event) error {
	docs := make([]any, len(events))
	for i := range events {
		docs[i] = reservationOf(&events[i], 0, contentSum(&events[i]))
	}
	_, err := s.ids.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 && mongo.IsDuplicateKeyError(bwe.WriteErrors[0]):
		e := events[bwe.WriteErrors[0].Index]
		return invalid("position %d: event id %s is used twice in the log; event ids are unique", e.Position, e.ID)
	}
	return classify(err)
}

// ChainVerifier checks the hash chains of a whole log in one pass, event by
// event in position order, holding only each stream's last version and hash.
// It is what `hindsight verify` and Import use; VerifyStream checks one
// stream from the store instead.
type ChainVerifier struct {
	tips   map[string]chainTip
	before func(stream string) chainTip // the tip before the first checked event; nil = none
}

type chainTip struct {
	version int64
	hash    string
}

// NewChainVerifier returns a verifier for a log checked from position 1.
func NewChainVerifier() *ChainVerifier { return &ChainVerifier{tips: map[string]chainTip{}} }

// Check checks that e continues its stream (the next version, and a hash
// that links to the previous one) and records it. The error wraps
// ErrInvalidArgument and says what broke where.
func (v *ChainVerifier) Check(e *Event) error {
	t, ok := v.tips[e.StreamID]
	if !ok && v.before != nil {
		t = v.before(e.StreamID)
	}
	switch {
	case e.Version > t.version+1:
		return invalid("position %d: stream %q misses versions %d to %d (events removed)", e.Position, e.StreamID, t.version+1, e.Version-1)
	case e.Version <= t.version:
		return invalid("position %d: stream %q repeats version %d (an event inserted or reordered)", e.Position, e.StreamID, e.Version)
	}
	if h := eventHash(t.hash, e); h != e.Hash {
		return invalid("position %d: hash mismatch in stream %q at version %d: the event or one before it was altered", e.Position, e.StreamID, e.Version)
	}
	v.tips[e.StreamID] = chainTip{e.Version, e.Hash}
	return nil
}

// Streams returns how many streams were checked.
func (v *ChainVerifier) Streams() int { return len(v.tips) }
