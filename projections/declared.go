package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Declarative projections are read models defined at run time, without Go:
// a definition names the events it reads (a stream prefix and event types),
// how they are partitioned (by stream id, or a jq expression over the event),
// an initial state and a jq reducer from {state, event} to the next state.
// See the package documentation ("Declarative projections").

// DefinitionStreamPrefix is the prefix of the reserved streams that hold the
// definitions: the definition of projection NAME is the stream
// "hindsight.projections.NAME", one ProjectionDefined event per version, so
// a definition has versions, a history and an audit trail like any stream.
const DefinitionStreamPrefix = "hindsight.projections."

// DefinitionEventType is the type of the events of the definition streams.
const DefinitionEventType = "ProjectionDefined"

// Limits of definitions.
const (
	MaxProjectionNameLength = 64
	MaxReducerLength        = 16 << 10
	MaxPartitionByLength    = 4 << 10
	MaxFilterLength         = 4 << 10
	// MaxFilterTime bounds all the runs of one query's jq filter together
	// (one per partition), whatever the number of partitions.
	MaxFilterTime           = 2 * time.Second
	MaxDefinitionEventTypes = 100
	MaxPartitionKeyLength   = 256
	// DryRunEvents is how many of the most recent matching events a
	// definition is tried on before it is accepted, found among the last
	// DryRunScan positions of the log.
	DryRunEvents = 100
	DryRunScan   = 20000
)

// ErrProjectionFaulted: a declarative projection's reducer failed on an
// event; the projection stopped before it. The error is a *FaultError.
var ErrProjectionFaulted = errors.New("projection faulted")

// ErrForbidden: the caller's stream prefixes do not cover the partition (or
// projection) asked for.
var ErrForbidden = errors.New("forbidden")

// DefinitionStreamID returns the reserved stream of a projection's definition.
func DefinitionStreamID(name string) string { return DefinitionStreamPrefix + name }

// Definition describes a declarative projection.
type Definition struct {
	Name string `json:"name"`
	// StreamPrefix selects the streams it reads; "" = every stream (the
	// definition streams are never read).
	StreamPrefix string `json:"streamPrefix"`
	// EventTypes selects the event types it reads; empty = every type.
	EventTypes []string `json:"eventTypes,omitempty"`
	// PartitionBy is a jq expression over the event giving its partition
	// key (a string or a number); "" = the event's stream id. An event for
	// which it gives null (or nothing) goes to the partition of its stream's
	// last keyed event, or is skipped when its stream has none yet.
	PartitionBy string `json:"partitionBy,omitempty"`
	// InitialState is each partition's state before its first event: a
	// JSON object; empty = {}.
	InitialState json.RawMessage `json:"initialState,omitempty"`
	// Reducer is a jq expression from {state, event} to the next state,
	// which must be an object.
	Reducer string `json:"reducer"`
}

// StreamKeyed reports whether the partitions are streams.
func (d Definition) StreamKeyed() bool { return d.PartitionBy == "" }

// matches reports whether the projection reads the event.
func (d Definition) matches(ev *eventstore.Event) bool {
	if !strings.HasPrefix(ev.StreamID, d.StreamPrefix) || strings.HasPrefix(ev.StreamID, DefinitionStreamPrefix) {
		return false
	}
	if len(d.EventTypes) == 0 {
		return true
	}
	for _, t := range d.EventTypes {
		if t == ev.Type {
			return true
		}
	}
	return false
}

var projectionName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// normalize checks a definition's shape (not its jq) and returns it with
// defaults applied and the initial state compacted.
func (d Definition) normalize() (Definition, error) {
	switch {
	case len(d.Name) > MaxProjectionNameLength || !projectionName.MatchString(d.Name):
		return d, invalidInput("a projection name is 1 to %d characters of a-z 0-9 _ -, starting with a letter; got %q", MaxProjectionNameLength, d.Name)
	case strings.HasPrefix(d.StreamPrefix, DefinitionStreamPrefix):
		return d, invalidInput("the streams %q* are reserved for definitions", DefinitionStreamPrefix)
	case len(d.EventTypes) > MaxDefinitionEventTypes:
		return d, invalidInput("at most %d event types, got %d", MaxDefinitionEventTypes, len(d.EventTypes))
	case strings.TrimSpace(d.Reducer) == "":
		return d, invalidInput("the reducer must not be empty")
	case len(d.Reducer) > MaxReducerLength:
		return d, invalidInput("the reducer is %d bytes; at most %d are allowed", len(d.Reducer), MaxReducerLength)
	case len(d.PartitionBy) > MaxPartitionByLength:
		return d, invalidInput("partitionBy is %d bytes; at most %d are allowed", len(d.PartitionBy), MaxPartitionByLength)
	}
	if d.StreamPrefix != "" {
		if err := eventstore.ValidateStreamID(d.StreamPrefix); err != nil {
			return d, invalidInput("streamPrefix: %s", trimSentinel(err))
		}
	}
	for _, t := range d.EventTypes {
		if err := eventstore.ValidateEventType(t); err != nil {
			return d, invalidInput("eventTypes: %s", trimSentinel(err))
		}
	}
	if strings.TrimSpace(d.PartitionBy) == "" {
		d.PartitionBy = ""
	}
	if len(bytes.TrimSpace(d.InitialState)) == 0 || string(bytes.TrimSpace(d.InitialState)) == "null" {
		d.InitialState = json.RawMessage(`{}`)
	}
	var obj map[string]any
	if err := json.Unmarshal(d.InitialState, &obj); err != nil || obj == nil {
		return d, invalidInput("the initial state must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, d.InitialState); err != nil {
		return d, invalidInput("the initial state must be a JSON object")
	}
	d.InitialState = buf.Bytes()
	if d.EventTypes == nil {
		d.EventTypes = []string{}
	}
	return d, nil
}

// ProjectionStatus is where a definition version stands.
type ProjectionStatus string

const (
	// StatusBuilding: folding the log in the background; an older version,
	// if any, answers meanwhile.
	StatusBuilding ProjectionStatus = "BUILDING"
	// StatusActive: the version that answers queries.
	StatusActive ProjectionStatus = "ACTIVE"
	// StatusFaulted: its reducer failed on an event; it stopped there.
	StatusFaulted ProjectionStatus = "FAULTED"
	// StatusReplaced: a later version took over (or was defined before
	// this one was built).
	StatusReplaced ProjectionStatus = "REPLACED"
)

// FaultKind says how a reducer failed.
type FaultKind string

const (
	FaultTimeout       FaultKind = "TIMEOUT"         // over the time limit for one event
	FaultStateTooLarge FaultKind = "STATE_TOO_LARGE" // the state is over the size limit
	FaultRuntimeError  FaultKind = "RUNTIME_ERROR"   // jq raised an error (or gave no value)
	FaultNotAnObject   FaultKind = "NOT_AN_OBJECT"   // the reducer's result is not an object
	FaultPartitionKey  FaultKind = "PARTITION_KEY"   // partitionBy gave something that is not a key
	FaultMemoryBudget  FaultKind = "MEMORY_BUDGET"   // the declarative projections' states would pass Options.ProjectionMemoryBudget
	FaultInvalid       FaultKind = "INVALID_DEFINITION"
)

// Fault is where and why a declarative projection stopped.
type Fault struct {
	Projection        string
	DefinitionVersion int64
	Kind              FaultKind
	Message           string
	Position          int64 // of the event it failed on; the projection holds everything before it
	StreamID          string
	EventType         string
	EventVersion      int64
}

// FaultError reports a fault; errors.Is(err, ErrProjectionFaulted) holds.
type FaultError struct{ Fault Fault }

func (e *FaultError) Error() string {
	f := e.Fault
	return fmt.Sprintf("projection %q version %d faulted at position %d (stream %q, event %s): %s: %s",
		f.Projection, f.DefinitionVersion, f.Position, f.StreamID, f.EventType, f.Kind, f.Message)
}

func (e *FaultError) Is(target error) bool { return target == ErrProjectionFaulted }

// DefinitionVersion is one recorded version of a definition and how far it
// has been built on this instance.
type DefinitionVersion struct {
	Definition
	Version    int64     // the definition stream's version: 1, 2, ...
	Position   int64     // of its ProjectionDefined event
	RecordedAt time.Time // when it was defined
	Status     ProjectionStatus
	Checkpoint int64   // how far into the log this version has folded
	Progress   float64 // 0..1 while building; 1 once caught up
	Partitions int
	States     int   // partition states held, all partitions together
	StateBytes int64 // the JSON size of the states whose JSON is in memory
	// EvictedStates are states whose JSON the memory budget evicted; a read
	// folds them again from a kept state (declared_evict.go).
	EvictedStates int
	// RestoredFrom is the position up to which this instance restored the
	// version from its snapshots instead of folding the log (0: folded).
	RestoredFrom int64
	// SnapshotsUpTo is the position up to which this instance built the
	// version and recorded that a restart may restore it (0: not yet).
	SnapshotsUpTo int64
	// SnapshotsRead counts folds of restored or evicted states that started
	// from a snapshot in the store.
	SnapshotsRead uint64
	// Refolds counts reads that folded an evicted or restored state again
	// from the kept state before it.
	Refolds uint64
	// RestoredEvents counts events this instance restored from snapshots
	// (their partitions recorded, the reducer not run), and RefilledStates
	// the restored states it has folded again since, in the background.
	RestoredEvents, RefilledStates uint64
	Fault                          *Fault // set when FAULTED
}

// DryRun is what a definition produced on the most recent matching events,
// each partition folded from the initial state (earlier events are not read).
type DryRun struct {
	Events       int   // events folded
	FromPosition int64 // first and last of them; 0 when none matched
	ToPosition   int64
	Partitions   []PartitionState // the partitions they touched, by key, at most DryRunSample
}

// DryRunSample bounds the partitions a dry run reports.
const DryRunSample = 20

// PartitionState is a partition's state at some point.
type PartitionState struct {
	Projection        string
	DefinitionVersion int64
	Key               string
	Version           int64 // events folded into it
	Position          int64 // of the last of them
	RecordedAt        time.Time
	State             json.RawMessage
}

// ListPartitions selects a page of a projection's partitions at a point.
type ListPartitions struct {
	Name   string
	At     eventstore.At
	Filter string // jq over the state; a partition is kept when it gives true (not false or null)
	First  int    // 1..1000
	After  string // opaque cursor from a previous page
	Count  bool   // also count every match (visits every partition)
	Scope  Scope  // nil = everything
}

// PartitionPage is one page of partitions.
type PartitionPage struct {
	Partitions        []PartitionState
	Cursors           []string
	TotalCount        int // only with ListPartitions.Count
	HasNext           bool
	EndCursor         string
	Position          int64 // the point answered, as a position
	DefinitionVersion int64
}

// Scope is what a caller may read: auth.Principal implements it. Partitions
// keyed by stream are readable when their stream is; a partition keyed by a
// jq expression mixes events of many streams, so it is readable only by a
// caller who may read every stream the projection reads (all streams with
// its prefix).
type Scope interface {
	Allows(streamID string) bool
	AllowsAllWithPrefix(prefix string) bool
}
