package eventstore

import (
	"encoding/json"
	"time"
)

// ReadStreamOptions selects a page of one stream. The zero value reads the
// stream forward from its first event, up to DefaultReadLimit events.
type ReadStreamOptions struct {
	// From is exclusive. Forward: versions > From. Backward: versions < From,
	// where From 0 means "from the last event".
	From     int64
	Backward bool
	Limit    int // 1..MaxReadLimit; 0 means DefaultReadLimit
}

// ReadAllOptions selects a page of the global log, in position order.
type ReadAllOptions struct {
	After        int64    // exclusive position; 0 = from the start
	Types        []string // only these event types; empty = all
	StreamPrefix string   // only streams whose id starts with this
	// AnyPrefix keeps only streams whose id starts with one of these (and
	// with StreamPrefix, if set); empty = all. It is how a reader limited to
	// several prefixes reads the log in pages as full as anyone's.
	AnyPrefix []string
	Limit     int // 1..MaxReadLimit; 0 means DefaultReadLimit
}

// Read limits.
//
// A page holds at most its Limit of events and at most MaxPageBytes of their
// data and metadata, and always at least one event when any is there. The
// byte bound is what keeps a page of large events (1,000 of 64 KiB is 64 MiB)
// from costing the reader, the store's fetch of evicted payloads and whoever
// encodes the page that much memory at once. So a page shorter than its Limit
// does not mean the end: read until a page is empty, or compare with the
// stream's head.
const (
	DefaultReadLimit = 100
	MaxReadLimit     = 1000
	MaxPageBytes     = MaxAppendBytes // a page always has room for the largest event
)

// SubscribeOptions selects what a subscription delivers. Every matching
// committed event is delivered exactly once, in position order.
type SubscribeOptions struct {
	// AfterPosition is exclusive; nil means live from the current head.
	// Ignored when StreamID is set.
	AfterPosition *int64
	// StreamID restricts the subscription to one stream.
	StreamID string
	// AfterVersion is exclusive and used with StreamID; nil means live from now.
	AfterVersion *int64
	Types        []string
	StreamPrefix string
	// MaxLag, when > 0, makes Recv fail with ErrSubscriberTooSlow once the
	// subscriber is more than MaxLag positions behind the head.
	MaxLag int64
	// Batched lets the store coalesce the subscription's wake-ups for new
	// commits with those of the other batched subscriptions, so that under
	// load each wake-up delivers several events: meant for fanning out to
	// many clients. A live event may then wait up to 30 µs per batched
	// subscription, at most 100 ms; a lone one does not wait. What is
	// delivered is unchanged. See wake.go.
	Batched bool
}

// Verification is the result of checking a stream's hash chain.
type Verification struct {
	OK                 bool
	CheckedEvents      int
	FirstBrokenVersion int64  // 0 when OK
	Reason             string // empty when OK
}

// Snapshot is a projection's state of one stream at one version.
type Snapshot struct {
	StreamID      string
	Projection    string
	SchemaVersion int
	Version       int64
	Position      int64
	RecordedAt    time.Time
	State         json.RawMessage
}

// SnapshotQuery asks for the latest snapshot at or before a point.
type SnapshotQuery struct {
	StreamID      string
	Projection    string
	SchemaVersion int // snapshots of other schema versions are never returned
	At            At  // Now, AtVersion, AtPosition or AtTime
}

// Stats are counters and gauges for metrics.
type Stats struct {
	HeadPosition   int64
	Streams        int
	LogEvents      int    // events in the image's skeleton: the whole log
	ResidentEvents int    // events whose payload is in memory
	ResidentBytes  int64  // what the image holds, skeleton and payloads (estimated from sizes)
	SkeletonBytes  int64  // the part of ResidentBytes that is never evicted
	BudgetBytes    int64  // the memory budget; 0 = unlimited
	Evictions      uint64 // event payloads evicted to stay within the budget
	Hits, Misses   uint64 // image reads served from memory / that read the store
	Appends        uint64 // successful appends (not counting idempotent replays)
	Conflicts      uint64 // appends rejected with ErrWrongExpectedVersion
	Batches        uint64 // group-commit round trips
	BatchedAppends uint64 // appends written in those round trips
	StoreErrors    uint64
	LogReads       uint64 // reads of the log after the image was built (scans on FerretDB)
	Peers          int    // other instances alive
	Subscribers    int64
	Ready          bool
}
