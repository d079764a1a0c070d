package eventstore

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Use errors.Is to test for them; errors returned by the
// store wrap them, often inside an *Error that carries the operation and stream.
var (
	// ErrWrongExpectedVersion: the stream was not in the expected state. The
	// concrete error is a *WrongExpectedVersionError carrying the actual version.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrInvalidArgument: the request broke a documented limit or rule and
	// nothing was written. The message says which.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrDuplicateEventID: an event id already stored was reused for
	// different content, at a different version or in another stream. Event
	// ids are unique in the whole log.
	ErrDuplicateEventID = errors.New("event id reused with different content")
	// ErrStoreUnavailable: the store could not be reached in time. Nothing is
	// acknowledged; the caller may retry.
	ErrStoreUnavailable = errors.New("store unavailable")
	// ErrSnapshotNotFound: no usable snapshot exists.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("event store closed")
	// ErrNotReady: the memory image is still being built.
	ErrNotReady = errors.New("event store not ready")
	// ErrDamaged: a stored document is not what this package writes; the
	// store was changed behind its back.
	ErrDamaged = errors.New("the stored log is damaged")
	// ErrSubscriberTooSlow: a subscriber fell further behind than allowed.
	ErrSubscriberTooSlow = errors.New("subscriber too slow")
)

// Error adds the operation and the stream to a sentinel error.
type Error struct {
	Op       string // "append", "read", "subscribe", ...
	StreamID string // may be empty
	Err      error
}

func (e *Error) Error() string {
	if e.StreamID == "" {
		return "eventstore: " + e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("eventstore: %s %q: %v", e.Op, e.StreamID, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// WrongExpectedVersionError reports an optimistic-concurrency conflict.
//
//	var wev *eventstore.WrongExpectedVersionError
//	if errors.As(err, &wev) {
//		log.Printf("stream %s is at version %d", wev.StreamID, wev.Actual)
//	}
type WrongExpectedVersionError struct {
	StreamID string
	Expected ExpectedState
	Actual   int64 // the stream's version when the append was checked; 0 = no stream
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("wrong expected version for stream %q: expected %s, actual version %d",
		e.StreamID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
