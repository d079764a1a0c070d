package graph

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/scalar"
	"github.com/hindsight-dev/hindsight/projections"
)

// TestClassify pins the code of every error the resolvers can return,
// including those of projections that the generic API cannot provoke.
func TestClassify(t *testing.T) {
	wev := &eventstore.WrongExpectedVersionError{StreamID: "s", Expected: eventstore.Exact(3), Actual: 7}
	tests := []struct {
		name    string
		err     error
		code    string
		message string // "" = any
	}{
		{"wrong expected version", &eventstore.Error{Op: "append", StreamID: "s", Err: wev}, CodeWrongExpectedVersion, ""},
		{"wrapped by projections", fmt.Errorf("projections: add item: %w", wev), CodeWrongExpectedVersion, ""},
		{"resolver input", badInputf("first must be between 1 and 1000, got 0"), CodeBadUserInput, "first must be between 1 and 1000, got 0"},
		{"scalar input", &scalar.Error{Msg: "bad time"}, CodeBadUserInput, "bad time"},
		{"store invalid argument", &eventstore.Error{Op: "append", StreamID: "s",
			Err: fmt.Errorf("%w: stream id must not be empty", eventstore.ErrInvalidArgument)}, CodeBadUserInput, "stream id must not be empty"},
		{"projections invalid input", fmt.Errorf("projections: %w: quantity must be 1 to 10000", projections.ErrInvalidInput), CodeBadUserInput, "quantity must be 1 to 10000"},
		{"duplicate event id", &eventstore.Error{Op: "append", StreamID: "s", Err: eventstore.ErrDuplicateEventID}, CodeBadUserInput, ""},
		{"business rule", fmt.Errorf("pay: %w", &projections.RuleError{Msg: "only a PLACED order can be paid"}), CodeInvalidState, "only a PLACED order can be paid"},
		{"stream not found", &eventstore.Error{Op: "verify", StreamID: "s", Err: eventstore.ErrStreamNotFound}, CodeNotFound, ""},
		{"order not found", fmt.Errorf("order 42: %w", projections.ErrNotFound), CodeNotFound, ""},
		{"projection lagging", projections.ErrProjectionLagging, CodeProjectionLagging, ""},
		{"state too large", fmt.Errorf("state: %w", &projections.StateTooLargeError{StreamID: "s", Version: 2, Bytes: 8388608, Limit: 4194304}),
			CodeStateTooLarge, "the stream's state is 8388608 bytes as JSON at version 2, over the limit of 4194304 bytes; " +
				"its state is not served at or after that version: read the stream's events instead"},
		{"state of too many values", fmt.Errorf("state: %w", &projections.StateTooLargeError{StreamID: "s", Version: 3, Bytes: 200000, Limit: 4194304, Values: 70000}),
			CodeStateTooLarge, "the stream's state holds 70000 JSON values at version 3, over the limit of 65536; " +
				"its state is not served at or after that version: read the stream's events instead"},
		{"subscriber too slow", eventstore.ErrSubscriberTooSlow, CodeSubscriberTooSlow, ""},
		{"store unavailable", &eventstore.Error{Op: "append", Err: fmt.Errorf("%w: server selection error: 10.0.0.7:27017", eventstore.ErrStoreUnavailable)},
			CodeStoreUnavailable, "the event store is unavailable; retry later"},
		{"store not ready", eventstore.ErrNotReady, CodeStoreUnavailable, ""},
		{"store closed", &eventstore.Error{Op: "read all", Err: eventstore.ErrClosed}, CodeStoreUnavailable, ""},
		{"deadline", context.DeadlineExceeded, CodeStoreUnavailable, ""},
		{"anything else", errors.New("mongo: auth failed for user admin"), CodeInternal, ""},
		{"panic", errInternal, CodeInternal, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg, _ := classify(tc.err)
			if code != tc.code {
				t.Errorf("code %s, want %s", code, tc.code)
			}
			if tc.message != "" && msg != tc.message {
				t.Errorf("message %q, want %q", msg, tc.message)
			}
			if code != CodeInternal && msg == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 999, 1 << 40} {
		for _, k := range []byte{cursorPosition, cursorVersion} {
			got, err := decodeCursor(k, encodeCursor(k, n))
			if err != nil || got != n {
				t.Errorf("kind %c n %d: got %d, %v", k, n, got, err)
			}
		}
	}
	if _, err := decodeCursor(cursorPosition, encodeCursor(cursorVersion, 5)); err == nil {
		t.Error("a version cursor was accepted as a position cursor")
	}
}
