package eventstore

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Every read of commit documents goes through a commitCursor, which bounds
// each reply from the store by bytes (see "Reading the store" in doc.go).
// MongoDB caps a reply at 16 MiB whatever the batch size; FerretDB does not,
// and one reply of 1,000 commits at the append limit is far beyond the
// driver's 48 MB message limit ("length of read message too large"). So the
// batch size of every reply is chosen here, from what the image knows of the
// sizes of the commits the reply can hold.
const (
	// MaxReplyBytes is what one reply of the store may hold in the worst
	// case: well under MongoDB's 16 MiB.
	MaxReplyBytes = 12 << 20
	// MaxCommitBytes bounds the BSON size of one commit document: the
	// append limit of data and metadata, plus, for each of the most events
	// an append holds, its id, a type of 256 characters of up to 4 bytes,
	// its hash and the BSON framing, plus the commit's own fields.
	MaxCommitBytes = MaxAppendBytes + MaxEventsPerAppend*(36+4*MaxEventTypeLength+64+eventOverhead) +
		commitOverhead + MaxStreamIDLength
	// smallCommitBytes: the image records the size of every commit above
	// it; any other commit it holds counts as this big.
	smallCommitBytes = 64 << 10

	eventOverhead  = 80  // BSON framing of one event: its document, array key and field names
	commitOverhead = 160 // BSON framing and fixed fields of one commit
	maxBatch       = 1000
)

// worstBatch is the batch size when nothing is known of the commits: each
// may be at the limit.
const worstBatch = MaxReplyBytes / MaxCommitBytes

// commitBytes bounds the BSON size of the commit document holding events.
func commitBytes(events []Event) int64 {
	n := int64(commitOverhead + len(events[0].StreamID))
	for i := range events {
		e := &events[i]
		n += int64(eventOverhead + len(e.ID) + len(e.Type) + len(e.Data) + len(e.Metadata) + len(e.Hash))
	}
	return n
}

// bigCommit is a commit larger than smallCommitBytes, known to the image.
type bigCommit struct {
	first int64 // its _id, the position of its first event
	bytes int64
}

// noteSize records the size of a commit larger than smallCommitBytes.
// Callers hold the write lock and apply commits in position order.
func (im *image) noteSize(events []Event) {
	if b := commitBytes(events); b > smallCommitBytes {
		im.skelBytes += allocSize((len(im.big)+1)*16) - allocSize(len(im.big)*16)
		im.big = append(im.big, bigCommit{first: events[0].Position, bytes: b})
	}
}

// replyBatch is how many commits the next reply of a cursor may hold.
//
// For a read of the global log (stream ""), the commits it reads start
// after position after and at or before last. Over positions the image
// holds, the commits are the known large ones, in position order, and small
// ones (smallCommitBytes at most): in the worst case the next reply starts
// with the large ones, so it takes them in order while their sum fits, then
// as many small ones as fit. Beyond the image's head nothing is known, and
// every commit counts as MaxCommitBytes.
//
// For a read of one stream in version order, after and last are versions,
// and the stream's own commits are walked in the skeleton, each counted at
// its known size.
func (im *image) replyBatch(stream string, after, last int64) int32 {
	im.mu.RLock()
	defer im.mu.RUnlock()
	var n, total int64
	take := func(bytes int64) bool {
		if n >= maxBatch || total+bytes > MaxReplyBytes {
			return false
		}
		n, total = n+1, total+bytes
		return true
	}
	if stream != "" {
		st := im.streams[stream]
		if st == nil {
			return worstBatch
		}
		from, end := max(after+1, 1), min(last, st.version)
		if im.takeStreamCommits(st, from, end, take) < end {
			return int32(max(n, 1))
		}
		v := max(from, end+1)
		for v <= last && take(MaxCommitBytes) {
			v++ // versions the image does not hold yet: commits of unknown size
		}
		return int32(max(n, 1))
	}
	if last > im.head.Load() {
		return worstBatch
	}
	i := sort.Search(len(im.big), func(i int) bool { return im.big[i].first > after })
	for ; i < len(im.big) && im.big[i].first <= last; i++ {
		if !take(im.big[i].bytes) {
			return int32(max(n, 1))
		}
	}
	return int32(min(maxBatch, n+(MaxReplyBytes-total)/smallCommitBytes))
}

// takeStreamCommits offers take the size (sizeAt) of each commit of st that
// starts at a version from from to to, in version order, and returns the
// last version before the first commit take refused: to if it took them
// all (from-1 if there were none). Callers hold the lock.
func (im *image) takeStreamCommits(st *streamEntry, from, to int64, take func(bytes int64) bool) int64 {
	for v := from; v <= to; v++ {
		if sl := im.versionSlot(st, v); sl.off == 0 && !take(im.sizeAt(sl.position)) {
			return v - 1
		}
	}
	return max(to, from-1)
}

// backwardSpan narrows versions lo..hi of stream id, which a backward page
// reads from the store, to the newest ones whose commits fit in MaxPageBytes
// by the sizes the image knows (a small commit counts as smallCommitBytes),
// but at least the commit holding hi: a backward page keeps its newest events,
// so the read cannot simply stop at the bound as a forward one does. It
// returns the new lo and the version at which the commit holding it starts
// (from is that of lo).
func (im *image) backwardSpan(id string, lo, hi, from int64) (int64, int64) {
	im.mu.RLock()
	defer im.mu.RUnlock()
	st := im.streams[id]
	if st == nil || hi > st.version {
		return lo, from
	}
	newLo, from, total := hi, hi, int64(0)
	for v := hi; v >= lo; {
		sl := im.versionSlot(st, v)
		start := v - int64(sl.off)
		size := im.sizeAt(sl.position - int64(sl.off))
		if total > 0 && total+size > MaxPageBytes {
			break
		}
		total += size
		newLo, from = max(lo, start), start
		v = start - 1
	}
	return newLo, from
}

// sizeAt bounds the size of the commit starting at position p. Callers hold
// the lock.
func (im *image) sizeAt(p int64) int64 {
	i := sort.Search(len(im.big), func(i int) bool { return im.big[i].first >= p })
	if i < len(im.big) && im.big[i].first == p {
		return im.big[i].bytes
	}
	return smallCommitBytes
}

// commitCursor reads commit documents in position order, by _id or by
// version within one stream, with one cursor, and sets the batch size of
// every reply from replyBatch. Every read of the commits collection uses it.
type commitCursor struct {
	cur    *mongo.Cursor
	img    *image
	stream string // "" for a read of the global log by position
	after  int64  // the last position (or version, for a stream) read
	last   int64
}

// findCommits opens a commitCursor over the commits matching filter, which
// must be sorted by _id (stream "") or by version within the stream.
// after is the position (version) before the first commit it can return,
// last the last position (version) a commit it returns can start at
// (openEnded when unknown).
func (s *Store) findCommits(ctx context.Context, filter bson.D, stream string, after, last int64) (*commitCursor, error) {
	c := &commitCursor{img: s.img, stream: stream, after: after, last: last}
	sort := bson.D{{Key: "_id", Value: 1}}
	if stream != "" {
		sort = bson.D{{Key: "version", Value: 1}}
	}
	cur, err := s.commits.Find(ctx, filter, options.Find().SetSort(sort).SetBatchSize(s.img.replyBatch(stream, after, last)))
	if err != nil {
		return nil, classify(err)
	}
	c.cur = cur
	return c, nil
}

// next returns the next commit, or io.EOF after the last.
func (c *commitCursor) next(ctx context.Context) (*commitDoc, error) {
	raw, err := c.nextRaw(ctx)
	if err != nil {
		return nil, err
	}
	var d commitDoc
	if err := c.cur.Decode(&d); err != nil {
		return nil, damaged(raw, err)
	}
	c.after = d.LastPosition
	if c.stream != "" {
		c.after = d.Version + int64(len(d.Events)) - 1
	}
	return &d, nil
}

// nextRaw returns the next commit as the driver holds it, valid until the
// next call, or io.EOF after the last. The caller sets c.after.
func (c *commitCursor) nextRaw(ctx context.Context) (bson.Raw, error) {
	if c.cur.RemainingBatchLength() == 0 {
		c.cur.SetBatchSize(c.img.replyBatch(c.stream, c.after, c.last))
	}
	if !c.cur.Next(ctx) {
		if err := c.cur.Err(); err != nil {
			return nil, classify(err)
		}
		return nil, io.EOF
	}
	return c.cur.Current, nil
}

// damaged is ErrDamaged for the commit document raw, which err says cannot
// be read.
func damaged(raw bson.Raw, err error) error {
	id := raw.Lookup("_id").String() // as JSON, whatever its type
	if n, ok := raw.Lookup("_id").AsInt64OK(); ok {
		id = itoa(n)
	}
	return fmt.Errorf("%w: the commit document with _id %s cannot be read (%v)", ErrDamaged, id, err)
}

func (c *commitCursor) close(ctx context.Context) error { return c.cur.Close(ctx) }

// openEnded is the last position of a read with no upper bound.
const openEnded = math.MaxInt64
