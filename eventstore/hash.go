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
// one.
type chainHasher struct {
	h       hash.Hash
	scratch []byte
	digits  [20]byte
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
	return chainHash(prev, e.StreamID, e.Version, e.ID, e.Type, e.Data, e.Metadata, e.RecordedAt)
}
