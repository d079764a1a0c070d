package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// LeafData is the canonical encoding of an event as a leaf of the tree (see
// the package documentation): the concatenation of
//
//	F("hindsight-event-v1") || F(position) || F(stream) || F(version) ||
//	F(id) || F(type) || F(data) || F(metadata) || F(recordedAt) || F(hash)
//
// where F(x) is the length of x as a 4-byte big-endian unsigned integer
// followed by the bytes of x; position and version are decimal ASCII,
// recordedAt is RFC 3339 with nanoseconds in UTC as Go's time.RFC3339Nano
// formats it, metadata is empty when there is none, and hash is the
// stream-chain hash as the API shows it (64 lowercase hex digits). Every field
// is exactly what an export line holds, so anyone can rebuild a leaf from a
// backup. The length prefixes make the encoding injective: no two events
// share a leaf.
func LeafData(e *eventstore.Event) []byte {
	at := e.RecordedAt.UTC().Format(time.RFC3339Nano)
	n := 10*4 + len(leafDomain) + 40 + len(e.StreamID) + len(e.ID) + len(e.Type) + len(e.Data) + len(e.Metadata) + len(at) + len(e.Hash)
	b := bytes.NewBuffer(make([]byte, 0, n))
	writeLeaf(b, e, at)
	return b.Bytes()
}

// writeLeaf writes LeafData(e) to w, a field at a time; at is e.RecordedAt
// as LeafData formats it.
func writeLeaf(w io.Writer, e *eventstore.Event, at string) {
	var num [20]byte
	field := func(s []byte) {
		_, _ = w.Write(binary.BigEndian.AppendUint32(num[:0], uint32(len(s))))
		_, _ = w.Write(s)
	}
	field([]byte(leafDomain))
	field(strconv.AppendInt(nil, e.Position, 10))
	field([]byte(e.StreamID))
	field(strconv.AppendInt(nil, e.Version, 10))
	field([]byte(e.ID))
	field([]byte(e.Type))
	field(e.Data)
	field(e.Metadata)
	field([]byte(at))
	field([]byte(e.Hash))
}

// leafDomain names the encoding, so that a future encoding can never be
// mistaken for this one.
const leafDomain = "hindsight-event-v1"

// LeafHash is the RFC 6962 leaf hash of e: SHA-256(0x00 || LeafData(e)).
// It hashes the fields as it writes them, without LeafData's copy of the
// event: an append of 4 MiB of data would otherwise allocate 4 MiB more.
func LeafHash(e *eventstore.Event) []byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	writeLeaf(h, e, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	return h.Sum(nil)
}
