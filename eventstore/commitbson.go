package eventstore

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// encodeAhead is the number of events from which the writer hands the
// driver a commit already encoded, in one buffer of its exact size, rather
// than the struct.
//
// The driver encodes a struct into a buffer that starts small and grows by
// append, about 1.25× a step for large ones: a commit of 1,000 events of
// 4 KiB allocated some 21 MiB growing to its 4 MiB (cmd/abusebench, "append
// of 1,000 events"). An encoded document (bson.Raw) is copied into that
// buffer in one append, so the commit costs its size twice (ours and the
// driver's copy) instead of about five times, and ours is reused
// (commitArena). A commit of one large event grows the driver's buffer in
// one step anyway, and encoding it ahead would only add a copy: so few
// events go as the struct.
const encodeAhead = 8

// keepArena is the most a commitArena keeps between batches: an append at
// MaxAppendBytes encodes to a little over 4 MiB, so two fit. A larger batch
// gets a buffer of its own, left to the garbage collector.
const keepArena = 8 << 20

// commitArena is the writer's buffer for the commits it encodes ahead. The
// driver copies a document into its own buffer while marshalling it, before
// InsertMany returns, and a retry marshals the commits again: so once
// InsertMany returns, the buffer is free for the next batch. Reusing it
// saves an allocation of the batch's size (4 MiB for an append of 1,000
// events of 4 KiB; BenchmarkAppendAtLimit). Only the writer goroutine uses
// it.
type commitArena struct{ buf []byte }

// docs returns what the writer inserts for commits: the struct for a commit
// of few events, else its encoding in the arena.
func (a *commitArena) docs(commits []*commitDoc) []any {
	sizes := make([]int, len(commits)) // 0: goes as the struct
	need := 0
	for i, d := range commits {
		if len(d.Events) >= encodeAhead {
			sizes[i] = d.bsonSize()
			need += sizes[i]
		}
	}
	buf := a.buf[:0]
	if cap(buf) < need {
		buf = make([]byte, 0, need)
		if need <= keepArena {
			a.buf = buf
		}
	}
	out := make([]any, len(commits))
	for i, d := range commits {
		if sizes[i] == 0 {
			out[i] = d
			continue
		}
		// Each commit gets the room bsonSize reserves; the full slice
		// expression makes one that outgrew it (never, by bsonSize's
		// arithmetic) move instead of writing over the next.
		start := len(buf)
		out[i] = d.appendBSON(buf[start : start : start+sizes[i]])
		buf = buf[:start+sizes[i]]
	}
	return out
}

// appendBSON appends d encoded as the driver encodes the struct (the same
// fields, order and types; TestCommitBSON holds them equal).
func (d *commitDoc) appendBSON(dst []byte) bson.Raw {
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendInt64Element(dst, "_id", d.ID)
	dst = bsoncore.AppendStringElement(dst, "stream", d.Stream)
	dst = bsoncore.AppendInt64Element(dst, "version", d.Version)
	dst = bsoncore.AppendInt64Element(dst, "lastPosition", d.LastPosition)
	dst = bsoncore.AppendDateTimeElement(dst, "recordedAt", d.RecordedAt.UnixMilli())
	dst = bsoncore.AppendInt64Element(dst, "recordedAtNs", d.RecordedAtNs)
	aidx, dst := bsoncore.AppendArrayElementStart(dst, "events")
	var key [20]byte
	for i, e := range d.Events {
		var eidx int32
		eidx, dst = bsoncore.AppendDocumentElementStart(dst, string(strconv.AppendInt(key[:0], int64(i), 10)))
		dst = bsoncore.AppendStringElement(dst, "id", e.ID)
		dst = bsoncore.AppendStringElement(dst, "type", e.Type)
		dst = bsoncore.AppendStringElement(dst, "data", e.Data)
		if e.Metadata != "" {
			dst = bsoncore.AppendStringElement(dst, "metadata", e.Metadata)
		}
		dst = bsoncore.AppendStringElement(dst, "hash", e.Hash)
		dst, _ = bsoncore.AppendDocumentEnd(dst, eidx)
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, aidx)
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// bsonSize is the size of appendBSON's document, or a little more, so that
// its buffer never grows. The commit's own fields take 125 bytes besides
// the stream id. An event takes 67 besides its strings: its index element
// (type, a key of up to 3 digits, NUL: 5), its document's length and end
// (5), and five string elements (type, name, NUL, length, NUL: 9 for id,
// 11 for type, data and hash, 15 for metadata); FuzzCommitBSON found 64 too
// few.
func (d *commitDoc) bsonSize() int {
	n := 128 + len(d.Stream)
	for _, e := range d.Events {
		n += 68 + len(e.ID) + len(e.Type) + len(e.Data) + len(e.Metadata) + len(e.Hash)
	}
	return n
}
