// Package scalar implements Hindsight's custom GraphQL scalars for gqlgen:
// Time, JSON and Position. gqlgen.yml binds each scalar to the function pair
// MarshalX/UnmarshalX of this package, so the Go types stay plain
// (time.Time, json.RawMessage, int64) and the domain packages need no
// GraphQL code.
//
// Input errors are *Error values; the error presenter in package graph turns
// them into BAD_USER_INPUT.
package scalar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// Error is a malformed scalar input. Its message is meant for the client.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// MarshalTime writes t as RFC 3339 with nanoseconds, in UTC. Trailing zeros of
// the fraction are dropped (time.RFC3339Nano), which is the same text the hash
// chain uses for recordedAt.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339Nano)))
	})
}

// UnmarshalTime accepts an RFC 3339 string, with or without a fraction.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errorf("Time must be an RFC 3339 string, got %s", describe(v))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errorf("Time %q is not RFC 3339, e.g. 2026-11-23T10:00:00.123456789Z", s)
	}
	return t, nil
}

// MarshalJSON writes the stored JSON bytes as they are. A nil value (no
// metadata, no state) is null.
func MarshalJSON(v json.RawMessage) graphql.Marshaler {
	if len(v) == 0 {
		return graphql.Null
	}
	return graphql.WriterFunc(func(w io.Writer) { _, _ = w.Write(v) })
}

// UnmarshalJSON accepts any JSON value. From the variables of a plain HTTP
// request it arrives as JSON text, a json.RawMessage that package graph has
// checked and made compact, strings with the fewest escapes, names in the
// client's order (usually a view of the request body, so that a 4 MiB event
// is neither decoded into maps nor encoded again): it is returned as it is;
// the store and the projections copy what they keep into buffers of their
// own. Otherwise (a query literal, the variables of other transports) it
// arrives decoded into Go values, numbers as json.Number so that they keep
// their digits, and is encoded to compact JSON, object keys sorted, because
// that is all Go's decoded maps can give.
func UnmarshalJSON(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		return v, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errorf("JSON value cannot be encoded: %v", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// MarshalPosition writes a position as a string of decimal digits, because
// positions may outgrow the 53 bits a JavaScript number holds exactly.
func MarshalPosition(p int64) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, `"`+strconv.FormatInt(p, 10)+`"`)
	})
}

// UnmarshalPosition accepts a string of decimal digits or a non-negative
// integer.
func UnmarshalPosition(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		if v == "" || len(v) > 19 {
			return 0, errorf("Position %q must be a string of 1 to 19 decimal digits", v)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, errorf("Position %q must be a string of decimal digits", v)
			}
		}
		p, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errorf("Position %q is out of range", v)
		}
		return p, nil
	case json.Number:
		p, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, errorf("Position %s must be a whole number", v)
		}
		return nonNegative(p)
	case int:
		return nonNegative(int64(v))
	case int32:
		return nonNegative(int64(v))
	case int64:
		return nonNegative(v)
	case float64:
		if v != math.Trunc(v) || v < 0 || v > 1<<53 {
			return 0, errorf("Position %v must be a non-negative whole number", v)
		}
		return int64(v), nil
	}
	return 0, errorf("Position must be a string of decimal digits or an Int, got %s", describe(v))
}

func nonNegative(p int64) (int64, error) {
	if p < 0 {
		return 0, errorf("Position must not be negative, got %d", p)
	}
	return p, nil
}

// describe names the JSON kind of v for error messages, without echoing
// arbitrary client data back.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a Boolean"
	case string:
		return "a String"
	case json.Number, int, int32, int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
