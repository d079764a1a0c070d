package eventstore

import (
	"encoding/json"
	"time"
)

// Event is an event as stored in the log. Events are immutable: no API of this
// package updates or deletes one.
type Event struct {
	ID         string          // UUID; v7 when the client gave none
	StreamID   string          // the stream it belongs to
	Version    int64           // 1-based position within its stream
	Position   int64           // 1-based global position, unique and gap-free
	Type       string          // event type, e.g. "OrderPlaced"
	Data       json.RawMessage // compact JSON, any value
	Metadata   json.RawMessage // compact JSON, or nil when none was given
	RecordedAt time.Time       // server time, UTC; never decreases as Position increases
	Hash       string          // lowercase hex SHA-256 link of the stream's hash chain
}

// NewEvent is an event proposed for appending.
type NewEvent struct {
	ID       string          // optional UUID; a v7 is generated when empty. Give every event of an append an id, or none
	Type     string          // required, 1 to 256 characters, must not start with '$'
	Data     json.RawMessage // required JSON value
	Metadata json.RawMessage // optional JSON value
}

// AppendResult is what a successful append returns. For an idempotent replay it
// is the result of the original append.
type AppendResult struct {
	StreamID            string
	NextExpectedVersion int64 // the stream's version after this append
	FirstPosition       int64
	LastPosition        int64
	Events              []Event
	// TreeSize and RootHash are the size and root of the log's Merkle tree
	// right after this append (TreeSize = LastPosition), a receipt the
	// client can later check against a checkpoint with a consistency proof.
	// RootHash is lowercase hex. Both are zero when the store has no
	// verifiable log (see WithAppendReceipt).
	TreeSize int64
	RootHash string
}

// StreamHead describes the latest state of a stream.
type StreamHead struct {
	StreamID  string
	Version   int64     // version of the last event
	Position  int64     // global position of the last event
	CreatedAt time.Time // recordedAt of the first event
	UpdatedAt time.Time // recordedAt of the last event
}

// ExpectedState is what an append expects the stream to be. It is a closed set:
// Any, NoStream, StreamExists or Exact(n). Exact(0) is the same as NoStream.
type ExpectedState interface {
	isExpectedState()
	String() string
}

type (
	// Any accepts the stream in whatever state it is.
	Any struct{}
	// NoStream requires that the stream has no events.
	NoStream struct{}
	// StreamExists requires that the stream has at least one event.
	StreamExists struct{}
	// Exact requires that the stream is at exactly this version.
	Exact int64
)

func (Any) isExpectedState()          {}
func (NoStream) isExpectedState()     {}
func (StreamExists) isExpectedState() {}
func (Exact) isExpectedState()        {}

func (Any) String() string          { return "any" }
func (NoStream) String() string     { return "no stream" }
func (StreamExists) String() string { return "stream exists" }
func (e Exact) String() string      { return "version " + itoa(int64(e)) }

// satisfied reports whether a stream currently at version actual meets e.
func satisfied(e ExpectedState, actual int64) bool {
	switch e := e.(type) {
	case nil, Any:
		return true
	case NoStream:
		return actual == 0
	case StreamExists:
		return actual > 0
	case Exact:
		return int64(e) == actual
	}
	return false
}

// At is a point in time of the log: now, a time, a global position or a stream
// version. Build it with Now, AtTime, AtPosition or AtVersion.
type At struct {
	kind     atKind
	time     time.Time
	position int64
	version  int64
}

type atKind int

const (
	atNow atKind = iota
	atTime
	atPosition
	atVersion
)

// Now is the latest state.
func Now() At { return At{} }

// AtTime includes every event with recordedAt <= t.
func AtTime(t time.Time) At { return At{kind: atTime, time: t} }

// AtPosition includes every event with position <= p.
func AtPosition(p int64) At { return At{kind: atPosition, position: p} }

// AtVersion includes every event of a stream with version <= v. It only makes
// sense for single-stream reads; on the global log it is ErrInvalidArgument.
func AtVersion(v int64) At { return At{kind: atVersion, version: v} }

// IsNow reports whether a is the latest state.
func (a At) IsNow() bool { return a.kind == atNow }

// Position returns the position of an AtPosition point.
func (a At) Position() (int64, bool) { return a.position, a.kind == atPosition }

// Time returns the time of an AtTime point.
func (a At) Time() (time.Time, bool) { return a.time, a.kind == atTime }

// Version returns the version of an AtVersion point.
func (a At) Version() (int64, bool) { return a.version, a.kind == atVersion }
