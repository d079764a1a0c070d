package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Event ids are unique in the whole log, and the store enforces it (see
// "Event ids" in doc.go). A unique multikey index on the ids inside commit
// documents would do on MongoDB, but FerretDB v1.24 does not honour one
// across documents (TestEventIDIndexProbe), and it has no transactions. So
// each id is reserved, before the commit that holds it is written, by a
// document of its own in the eventids collection, whose _id is the event id:
// the unique _id makes two reservations of one id conflict on any store.
//
// A reservation binds the id to a place, a stream and version, and to the
// event's content. The place's commit decides it: (stream, version) is unique
// in the commits collection, so at most one commit ever fills a place, and a
// commit holds an id only if its writer held the id's reservation for that
// place. When the place is filled by another event, or the reservation is
// older than reservationTTL and its place still empty (its writer died or
// gave up), the reservation is stale and may be taken over. A takeover
// inserts the next generation (_id "<id>/1", "<id>/2", ...), never updates
// one: FerretDB's updates are not atomic, inserts of a unique _id are.
const EventIDsCollection = "eventids"

// reservationTTL is how long a reservation whose place is still empty may
// block its id: long after any writer has given up its commit (the op
// timeout, 5s by default).
const reservationTTL = 2 * time.Minute

type idDoc struct {
	ID      string    `bson:"_id"` // the event id, plus "/<generation>" after a takeover
	Stream  string    `bson:"stream"`
	Version int64     `bson:"version"`
	Sum     string    `bson:"sum"` // digest of the event's type, data and metadata
	At      time.Time `bson:"at"`  // when it was made, by its writer's clock
}

// appendBSON appends d as an element named key, encoded as the driver
// encodes the struct (TestIDDocBSON holds them equal).
func (d idDoc) appendBSON(dst []byte, key string) []byte {
	idx, dst := bsoncore.AppendDocumentElementStart(dst, key)
	dst = bsoncore.AppendStringElement(dst, "_id", d.ID)
	dst = bsoncore.AppendStringElement(dst, "stream", d.Stream)
	dst = bsoncore.AppendInt64Element(dst, "version", d.Version)
	dst = bsoncore.AppendStringElement(dst, "sum", d.Sum)
	dst = bsoncore.AppendDateTimeElement(dst, "at", d.At.UnixMilli())
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// bsonSize is appendBSON's size with a key of up to 8 bytes, or a little
// more: 7 for the element and its document besides the key, 62 for the
// five elements besides their strings.
func (d idDoc) bsonSize() int { return 80 + len(d.ID) + len(d.Stream) + len(d.Sum) }

// held is a reservation this writer made for an event it has not yet
// written, in the current group commit.
type held struct {
	gen     int
	stream  string
	version int64
	sum     string
}

func contentSum(e *Event) string {
	var c chainHasher
	return c.contentSum(e)
}

// contentSum is the digest a reservation binds e's content by, with c's
// digest and buffers: reserve sums every event of a group commit with one.
func (c *chainHasher) contentSum(e *Event) string {
	if c.h == nil {
		c.h = sha256.New()
	}
	c.h.Reset()
	c.text = append(append(c.text[:0], e.Type...), 0)
	c.h.Write(c.text)
	c.h.Write(e.Data)
	c.h.Write([]byte{0})
	c.h.Write(e.Metadata)
	c.scratch = c.h.Sum(c.scratch[:0])
	return hex.EncodeToString(c.scratch[:12])
}

func genID(id string, gen int) string {
	if gen == 0 {
		return id
	}
	return id + "/" + strconv.Itoa(gen)
}

func reservationOf(e *Event, gen int, sum string) idDoc {
	return idDoc{ID: genID(e.ID, gen), Stream: e.StreamID, Version: e.Version, Sum: sum, At: time.Now().UTC()}
}

// reserve reserves the ids of every event of writes, each for its place.
// It returns the writes whose ids are all held; the others have been
// answered (a duplicate id, or an id whose reservation is in flight
// elsewhere). mine holds the reservations made earlier in the same group
// commit, whose commits are known not to be written.
func (s *Store) reserve(writes []planned, mine map[string]held) ([]planned, error) {
	n := 0
	for _, w := range writes {
		n += len(w.events)
	}
	docs := make([]idDoc, 0, n)
	evs := make([]*Event, 0, n)
	var hasher chainHasher
	for _, w := range writes {
		for i := range w.events {
			e := &w.events[i]
			sum := hasher.contentSum(e)
			h, ok := mine[e.ID]
			switch {
			case ok && h.stream == e.StreamID && h.version == e.Version && h.sum == sum:
				continue // still ours, for the same place
			case ok:
				// Ours, and its commit was not written: take it over for
				// the new place.
				docs = append(docs, reservationOf(e, h.gen+1, sum))
			default:
				docs = append(docs, reservationOf(e, 0, sum))
			}
			evs = append(evs, e)
		}
	}
	if len(docs) == 0 {
		return writes, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	failed, err := insertUnordered(ctx, s.db, EventIDsCollection, s.wc, docs) // insertcmd.go
	if err != nil {
		return nil, classify(err)
	}
	conflicts := map[int]bool{}
	for _, we := range failed {
		if !mongo.IsDuplicateKeyError(we) {
			return nil, fmt.Errorf("store rejected an event id reservation: %w", we)
		}
		conflicts[we.Index] = true
	}
	rctx, rcancel := context.WithTimeout(context.Background(), s.readTimeout)
	defer rcancel()
	refused := map[string]error{}
	for i, e := range evs {
		d := docs[i]
		if !conflicts[i] {
			mine[e.ID] = held{gen: genOf(d.ID), stream: d.Stream, version: d.Version, sum: d.Sum}
			continue
		}
		h, err := s.takeReservation(rctx, e)
		if err != nil {
			refused[e.StreamID+"\x00"+strconv.FormatInt(e.Version, 10)] = err
			continue
		}
		mine[e.ID] = h
	}
	if len(refused) == 0 {
		return writes, nil
	}
	out := writes[:0:0]
	for _, w := range writes {
		var werr error
		for i := range w.events {
			if err := refused[w.events[i].StreamID+"\x00"+strconv.FormatInt(w.events[i].Version, 10)]; err != nil {
				werr = err
				break
			}
		}
		if werr != nil {
			w.req.reply(AppendResult{}, werr)
			continue
		}
		out = append(out, w)
	}
	return out, nil
}

func genOf(id string) int {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		g, _ := strconv.Atoi(id[i+1:])
		return g
	}
	return 0
}

// takeReservation resolves a reservation conflict for e: the id is held
// for e's place and content already (a retry racing with the original), or
// its reservation is stale and is taken over, or the id is used by another
// event (ErrDuplicateEventID), or its reservation is in flight elsewhere
// (ErrStoreUnavailable: retry).
func (s *Store) takeReservation(ctx context.Context, e *Event) (held, error) {
	sum := contentSum(e)
	for try := 0; try < 8; try++ {
		r, err := s.latestReservation(ctx, e.ID)
		if err != nil {
			return held{}, err
		}
		gen := genOf(r.ID)
		if r.Stream == e.StreamID && r.Version == e.Version && r.Sum == sum {
			// The same event for the same place: whichever commit fills
			// the place first holds it; (stream, version) is unique.
			return held{gen: gen, stream: r.Stream, version: r.Version, sum: r.Sum}, nil
		}
		state, err := s.slotState(ctx, r.Stream, r.Version, e.ID)
		if err != nil {
			return held{}, err
		}
		switch {
		case state == slotHoldsID:
			return held{}, fmt.Errorf("%w: event id %s is already stored, in stream %q at version %d; event ids are unique in the whole log",
				ErrDuplicateEventID, e.ID, r.Stream, r.Version)
		case state == slotEmpty && time.Since(r.At) < reservationTTL:
			return held{}, fmt.Errorf("%w: event id %s is reserved by an append to stream %q that has not completed; retry",
				ErrStoreUnavailable, e.ID, r.Stream)
		}
		// Stale: its place holds another event, or stayed empty too long.
		d := reservationOf(e, gen+1, sum)
		if _, err := s.ids.InsertOne(ctx, d); err != nil {
			if mongo.IsDuplicateKeyError(err) {
				continue // another writer took it over first: look again
			}
			return held{}, classify(err)
		}
		return held{gen: gen + 1, stream: d.Stream, version: d.Version, sum: d.Sum}, nil
	}
	return held{}, fmt.Errorf("%w: event id %s is contended by other writers; retry", ErrStoreUnavailable, e.ID)
}

// latestReservation returns the reservation of id with the highest
// generation: one range read of _id in [id, id+"0"), since '/' < '0'.
func (s *Store) latestReservation(ctx context.Context, id string) (idDoc, error) {
	cur, err := s.ids.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: id}, {Key: "$lt", Value: id + "0"}}}},
		options.Find().SetBatchSize(100))
	if err != nil {
		return idDoc{}, classify(err)
	}
	var docs []idDoc
	if err := cur.All(ctx, &docs); err != nil {
		return idDoc{}, classify(err)
	}
	if len(docs) == 0 {
		// Removed since the conflict: never done, but take it as stale.
		return idDoc{ID: id}, nil
	}
	best := docs[0]
	for _, d := range docs[1:] {
		if genOf(d.ID) > genOf(best.ID) {
			best = d
		}
	}
	return best, nil
}

type slotStatus int

const (
	slotEmpty slotStatus = iota
	slotHoldsID
	slotHoldsOther
)

// slotState tells whether version v of stream is committed, and with id.
// The image is brought up to date first, so a commit any instance
// acknowledged is seen.
func (s *Store) slotState(ctx context.Context, stream string, v int64, id string) (slotStatus, error) {
	if stream == "" {
		return slotHoldsOther, nil
	}
	if have, _ := s.img.tip(stream); have < v {
		if _, complete, err := s.catchUp(ctx); err != nil || !complete {
			rctx, cancel := context.WithTimeout(ctx, s.readTimeout)
			_, err := s.pull(rctx)
			cancel()
			if err != nil {
				return slotEmpty, err
			}
		}
		if have, _ := s.img.tip(stream); have < v {
			return slotEmpty, nil
		}
	}
	evs, err := s.ReadStream(ctx, stream, ReadStreamOptions{From: v - 1, Limit: 1})
	if err != nil {
		return slotEmpty, err
	}
	if len(evs) == 1 && evs[0].ID == id {
		return slotHoldsID, nil
	}
	return slotHoldsOther, nil
}
