package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strconv"
	"time"
)

// The hash chain.
//
// Every event stores hash_v, computed as
//
//	hash_v = SHA-256( prev || F(stream) || F(version) || F(id) || F(type) ||
//	                  F(data) || F(metadata) || F(recordedAt) )
//
// where prev is the 32 raw bytes of hash_{v-1} (32 zero bytes for version 1),
// and F(x) is the length of x as a 4-byte big-endian unsigned integer followed
// by the bytes of x. The fields are:
//   - stream: the stream id, UTF-8;
//   - version: the version in decimal ASCII, e.g. "42";
//   - id: the event id in canonical lowercase UUID form;
//   - type: the event type, UTF-8;
//   - data: the stored JSON bytes (the client's JSON with insignificant
//     whitespace removed, exactly as stored in the "data" field);
//   - metadata: the stored metadata JSON bytes, or empty when there is none;
//   - recordedAt: the time as RFC 3339 with nanoseconds in UTC, as produced by
//     Go's time.RFC3339Nano layout (trailing zeros of the fraction dropped),
//     e.g. "2026-11-23T10:00:00.123456789Z".
//
// The hex encoding (lowercase) of hash_v is what the API shows.
func chainHash(prev string, streamID string, version int64, id, typ string, data, meta []byte, at time.Time) string {
	var p [32]byte
	if prev != "" {
		_, _ = hex.Decode(p[:], []byte(prev))
	}
	var c chainHasher
	sum := c.sum(&p, []byte(streamID), version, []byte(id), []byte(typ), data, meta, at.UTC().AppendFormat(nil, time.RFC3339Nano))
	return hex.EncodeToString(sum[:])
}

// chainHasher computes hash_v over and over without allocating: one digest,
// reset for each event, and one scratch buffer for the length prefixes and
// the version's digits. VerifyStream hashes every event of a stream with
// one, and so does the writer every event of a group commit (eventHash).
type chainHasher struct {
	h       hash.Hash
	scratch []byte
	digits  [20]byte
	text    []byte // a string field's bytes, the previous hash's hex, the time
}

// sum returns hash_v of the fields; at is recordedAt as formatted above.
func (c *chainHasher) sum(prev *[32]byte, stream []byte, version int64, id, typ, data, meta, at []byte) (sum [32]byte) {
	if c.h == nil {
		c.h = sha256.New()
	}
	c.h.Reset()
	c.h.Write(prev[:])
	field := func(b []byte) {
		c.scratch = binary.BigEndian.AppendUint32(c.scratch[:0], uint32(len(b)))
		c.h.Write(c.scratch)
		c.h.Write(b)
	}
	field(stream)
	field(strconv.AppendInt(c.digits[:0], version, 10))
	field(id)
	field(typ)
	field(data)
	field(meta)
	field(at)
	return [32]byte(c.h.Sum(c.scratch[:0]))
}

func eventHash(prev string, e *Event) string {
	var c chainHasher
	return c.eventHash(prev, e)
}

// eventHash is chainHash of e after prev, allocating only the hex it
// returns: hashed one by one, an append of 1,000 events took a digest, a
// time and byte copies of its strings for each (BenchmarkAppendAtLimit).
func (c *chainHasher) eventHash(prev string, e *Event) string {
	var p [32]byte
	if prev != "" {
		c.text = append(c.text[:0], prev...)
		_, _ = hex.Decode(p[:], c.text)
	}
	// One buffer holds the string fields and the time, each a slice of it.
	t := append(c.text[:0], e.StreamID...)
	stream := len(t)
	t = append(t, e.ID...)
	id := len(t)
	t = append(t, e.Type...)
	typ := len(t)
	t = e.RecordedAt.UTC().AppendFormat(t, time.RFC3339Nano)
	c.text = t
	sum := c.sum(&p, t[:stream], e.Version, t[stream:id], t[id:typ], e.Data, e.Metadata, t[typ:])
	return hex.EncodeToString(sum[:])
}
