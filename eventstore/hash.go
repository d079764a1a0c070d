package eventstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	h := sha256.New()
	var p [32]byte
	if prev != "" {
		_, _ = hex.Decode(p[:], []byte(prev))
	}
	h.Write(p[:])
	field := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	field([]byte(streamID))
	field([]byte(strconv.FormatInt(version, 10)))
	field([]byte(id))
	field([]byte(typ))
	field(data)
	field(meta)
	field([]byte(at.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil))
}

func eventHash(prev string, e *Event) string {
	return chainHash(prev, e.StreamID, e.Version, e.ID, e.Type, e.Data, e.Metadata, e.RecordedAt)
}
