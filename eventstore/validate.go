package eventstore

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/hindsight-dev/hindsight/internal/jsonvalue"
)

// Limits on what one append may hold. Each is checked before anything is
// written; breaking one is ErrInvalidArgument.
const (
	MaxStreamIDLength  = 256
	MaxEventTypeLength = 256
	MaxEventsPerAppend = 1000
	MaxAppendBytes     = 4 << 20 // data plus metadata of all events of one append
)

// ValidateStreamID checks a stream id: 1 to 256 characters from the set
// A-Z a-z 0-9 and - _ . : @ / + = # ~ $, not starting with '$' (reserved for
// system streams).
func ValidateStreamID(id string) error {
	if id == "" {
		return invalid("stream id must not be empty")
	}
	if len(id) > MaxStreamIDLength {
		return invalid("stream id is %d characters long; the limit is %d", len(id), MaxStreamIDLength)
	}
	if id[0] == '$' {
		return invalid("stream ids starting with '$' are reserved")
	}
	for i := 0; i < len(id); i++ {
		if !streamIDChar(id[i]) {
			// The character, not its first byte: "ス", not "ã".
			r, _ := utf8.DecodeRuneInString(id[i:])
			return invalid("stream id contains %q at offset %d; allowed are A-Z a-z 0-9 and - _ . : @ / + = # ~ $", r, i)
		}
	}
	return nil
}

func streamIDChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '@', '/', '+', '=', '#', '~', '$':
		return true
	}
	return false
}

// ValidateEventType checks an event type: 1 to 256 characters of printable
// UTF-8, not starting with '$'.
func ValidateEventType(t string) error {
	if t == "" {
		return invalid("event type must not be empty")
	}
	if utf8.RuneCountInString(t) > MaxEventTypeLength {
		return invalid("event type is longer than %d characters", MaxEventTypeLength)
	}
	if t[0] == '$' {
		return invalid("event types starting with '$' are reserved")
	}
	if !utf8.ValidString(t) {
		return invalid("event type is not valid UTF-8")
	}
	for _, r := range t {
		if !unicode.IsPrint(r) {
			return invalid("event type contains a non-printable character")
		}
	}
	return nil
}

// prepare validates an append and returns normalized events: compact JSON,
// metadata nil when absent or null, and an id on every event. Either every
// event comes with an id or none does.
func prepare(streamID string, events []NewEvent) ([]NewEvent, error) {
	if err := ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, invalid("an append needs at least one event")
	}
	if len(events) > MaxEventsPerAppend {
		return nil, invalid("an append holds at most %d events, got %d", MaxEventsPerAppend, len(events))
	}
	// Ids make a retry recognisable (guarantee 3), and only if every event
	// has one: an id generated here differs on every try, so a retry of an
	// append that mixed the two could not be told from a new append.
	withID := 0
	for _, e := range events {
		if e.ID != "" {
			withID++
		}
	}
	if withID > 0 && withID < len(events) {
		return nil, invalid("%d of the %d events have an id: give every event of an append an id, or none, "+
			"so that a retry of the append can be recognised", withID, len(events))
	}
	out := make([]NewEvent, len(events))
	size := 0
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if err := ValidateEventType(e.Type); err != nil {
			return nil, invalid("event %d: %v", i, trimInvalid(err))
		}
		data, err := compactJSON(e.Data)
		if err != nil || data == nil {
			return nil, invalid("event %d: data must be a JSON value", i)
		}
		meta, err := compactJSON(e.Metadata)
		if err != nil {
			return nil, invalid("event %d: metadata must be a JSON value", i)
		}
		if bytes.Equal(meta, []byte("null")) {
			meta = nil
		}
		size += len(data) + len(meta)
		if size > MaxAppendBytes {
			return nil, invalid("an append holds at most %d bytes of data and metadata", MaxAppendBytes)
		}
		id := e.ID
		if id == "" {
			u, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			id = u.String()
		} else {
			u, err := uuid.Parse(id)
			if err != nil {
				return nil, invalid("event %d: id %q is not a UUID", i, id)
			}
			id = u.String() // canonical lowercase form
		}
		if _, dup := seen[id]; dup {
			return nil, invalid("event %d: id %s appears twice in one append", i, id)
		}
		seen[id] = struct{}{}
		out[i] = NewEvent{ID: id, Type: e.Type, Data: data, Metadata: meta}
	}
	return out, nil
}

// compactJSON returns raw without white space outside its strings, in a
// buffer of the store's own, or an error if raw is not one JSON value. It
// is json.Compact's result (strings, numbers and names as sent; duplicate
// names and invalid UTF-8 let through, as encoding/json does). Clients
// mostly send compact JSON, and then the result is an exact copy made
// after a check: for a 4 MiB event, one allocation of its size and two fast
// passes (jsontext validates at about 3 GB/s), where json.Compact's buffer
// grew by doubling and it and the json.Valid after it scanned at 0.4 GB/s
// (cmd/abusebench: 32 of the 45 ms an append of 4 MiB cost the server).
func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	opts := []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true), jsontext.PreserveRawStrings(true)}
	if !jsonvalue.SpaceOutsideStrings(raw) {
		if !jsontext.Value(raw).IsValid(opts...) {
			return nil, invalid("not JSON")
		}
		return bytes.Clone(raw), nil
	}
	return jsontext.AppendFormat(make([]byte, 0, len(raw)), raw, opts...)
}

// trimInvalid drops the "invalid argument: " prefix when nesting messages.
func trimInvalid(err error) string {
	s := err.Error()
	p := ErrInvalidArgument.Error() + ": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
