package eventstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// VerifyStream checks the stream's hash chain as stored. Unlike other reads
// it reads the store, not the memory image: tampering happens in the store,
// and the image was built from it at start. On MongoDB it is an indexed read
// of the stream's commits; on FerretDB a scan.
//
// It streams the commits, with replies bounded by bytes (findCommits), and
// checks each in the driver's reply buffer as it is: the fields are views
// of the BSON, hashed with one reused digest (chainHasher), so a stream of
// any length costs a fixed amount of memory besides the replies, where
// decoding every commit into strings and events cost 1.4 KB per event
// (cmd/abusebench, 10,000 events: 13.5 MiB).
func (s *Store) VerifyStream(ctx context.Context, streamID string) (Verification, error) {
	cur, err := s.findCommits(ctx, bson.D{{Key: "stream", Value: streamID}}, streamID, 0, openEnded)
	if err != nil {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: err}
	}
	defer cur.close(ctx)
	c := chainCheck{stream: []byte(streamID)}
	for {
		raw, err := cur.nextRaw(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: err}
		}
		v, ok, err := c.commit(raw)
		if err != nil {
			return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: err}
		}
		if !ok {
			return v, nil
		}
		cur.after = c.lastVersion
	}
	if c.n == 0 {
		return Verification{}, &Error{Op: "verify", StreamID: streamID, Err: ErrStreamNotFound}
	}
	return Verification{OK: true, CheckedEvents: c.n}, nil
}

// chainCheck checks a stream's events, in the order stored, for versions
// 1..n in order and every hash link.
type chainCheck struct {
	stream      []byte
	n           int
	prev        [32]byte // hash_{n}, zero before the first event
	lastPos     int64
	lastVersion int64
	hasher      chainHasher
	at          []byte // the commit's recordedAt, formatted
	hexSum      [64]byte
}

// rawEvent is an event of a commit document: views of its BSON.
type rawEvent struct {
	id, typ, data, meta, hash []byte
}

// commit checks the events of one commit document; when one breaks the
// chain, ok is false and v says where and why. A document that cannot be
// read as a commit is ErrDamaged.
func (c *chainCheck) commit(raw bson.Raw) (v Verification, ok bool, err error) {
	var pos, version, atNs int64
	var events bsoncore.Array
	err = eachElement(bsoncore.Document(raw), func(key []byte, val bsoncore.Value) (known bool) {
		switch string(key) {
		case "_id":
			pos, known = val.AsInt64OK()
		case "version":
			version, known = val.AsInt64OK()
		case "recordedAtNs":
			atNs, known = val.AsInt64OK()
		case "events":
			events, known = val.ArrayOK()
		default:
			return true
		}
		return known
	})
	if err != nil {
		return v, false, damaged(raw, err)
	}
	c.at = time.Unix(0, atNs).UTC().AppendFormat(c.at[:0], time.RFC3339Nano)
	i, broken := int64(0), false
	err = eachElement(bsoncore.Document(events), func(_ []byte, val bsoncore.Value) bool {
		doc, isDoc := val.DocumentOK()
		if !isDoc {
			return false
		}
		var e rawEvent
		if eachElement(doc, e.field) != nil {
			return false
		}
		var linked bool
		if v, linked = c.check(&e, version+i, pos+i); !linked {
			broken = true
			return false
		}
		i++
		return true
	})
	switch {
	case broken:
		return v, false, nil
	case err != nil:
		return v, false, damaged(raw, err)
	}
	return Verification{}, true, nil
}

// field takes the fields of an event document it knows; all are strings.
func (e *rawEvent) field(key []byte, val bsoncore.Value) bool {
	var dst *[]byte
	switch string(key) {
	case "id":
		dst = &e.id
	case "type":
		dst = &e.typ
	case "data":
		dst = &e.data
	case "metadata":
		dst = &e.meta
	case "hash":
		dst = &e.hash
	default:
		return true
	}
	s, ok := stringBytes(val)
	*dst = s
	return ok
}

// check checks the next event, stored at version and position.
func (c *chainCheck) check(e *rawEvent, version, position int64) (v Verification, ok bool) {
	want := int64(c.n + 1)
	broken := func(reason string) (Verification, bool) {
		return Verification{OK: false, CheckedEvents: c.n, FirstBrokenVersion: want, Reason: reason}, false
	}
	switch {
	case version > want:
		return broken("event missing: version " + itoa(want) + " is not stored")
	case version < want:
		return broken("duplicate or inserted event at version " + itoa(version))
	case position <= c.lastPos:
		return broken("event out of order: position " + itoa(position) + " does not follow " + itoa(c.lastPos))
	}
	sum := c.hasher.sum(&c.prev, c.stream, version, e.id, e.typ, e.data, e.meta, c.at)
	hex.Encode(c.hexSum[:], sum[:])
	if !bytes.Equal(c.hexSum[:], e.hash) {
		return broken("hash mismatch: the event or one before it was altered, removed, inserted or reordered")
	}
	c.n, c.prev, c.lastPos, c.lastVersion = c.n+1, sum, position, version
	return Verification{}, true
}

// errUnreadable is a commit document, or an event in it, whose fields do
// not have the types a commit's have.
var errUnreadable = fmt.Errorf("a field has the wrong type")

// eachElement calls f with each element of doc, without allocating, until
// f returns false (then errUnreadable) or the document ends; a document
// that is not BSON is an error too.
func eachElement(doc bsoncore.Document, f func(key []byte, val bsoncore.Value) bool) error {
	length, rest, ok := bsoncore.ReadLength(doc)
	if !ok || int(length) > len(doc) || length < 5 {
		return bsoncore.NewInsufficientBytesError(doc, doc)
	}
	rest = rest[:length-5] // less the length and the trailing NUL
	for len(rest) > 0 {
		var el bsoncore.Element
		el, rest, ok = bsoncore.ReadElement(rest)
		if !ok {
			return bsoncore.NewInsufficientBytesError(doc, rest)
		}
		if !f(el.KeyBytes(), el.Value()) {
			return errUnreadable
		}
	}
	return nil
}

// stringBytes returns a BSON string's bytes, a view of val.
func stringBytes(val bsoncore.Value) ([]byte, bool) {
	if val.Type != bsoncore.TypeString || len(val.Data) < 5 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint32(val.Data))
	if n < 1 || 4+n > len(val.Data) {
		return nil, false
	}
	return val.Data[4 : 4+n-1], true
}
