package projections

import (
	"bytes"
	"encoding/json"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// MergeProjectionName is the name of the generic JSON merge projection.
const MergeProjectionName = "merge"

// MergeProjection folds any stream's event data as JSON merge patches
// (RFC 7386): objects merge recursively, a null member deletes its key, and
// any other value replaces the state. It powers Stream.state.
//
// Its state is a decoded JSON value (map[string]any, []any, string,
// json.Number, bool or nil) that is never modified in place: Apply copies
// only the objects on the patched paths and shares the rest.
type MergeProjection struct{}

var (
	_ Projection[any] = MergeProjection{}
	_ StateCodec[any] = MergeProjection{}
)

func (MergeProjection) Name() string       { return MergeProjectionName }
func (MergeProjection) SchemaVersion() int { return 1 }
func (MergeProjection) Initial() any       { return nil }

// Apply merges the event's data into the state. Data that is not valid JSON
// (the store never holds such) leaves the state unchanged.
func (MergeProjection) Apply(state any, e eventstore.Event) any {
	patch, err := decodeJSON(e.Data)
	if err != nil {
		return state
	}
	return mergePatch(state, patch)
}

// EncodeState writes the state as JSON, numbers exactly as they came.
func (MergeProjection) EncodeState(s any) (json.RawMessage, error) { return json.Marshal(s) }

// DecodeState reads a state, keeping numbers as json.Number so that large
// integers survive a snapshot unchanged.
func (MergeProjection) DecodeState(b json.RawMessage) (any, error) { return decodeJSON(b) }

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// mergePatch implements the MergePatch function of RFC 7386, section 2,
// without modifying target or patch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, _ := target.(map[string]any)
	out := make(map[string]any, len(t)+len(p))
	for k, v := range t {
		out[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}
