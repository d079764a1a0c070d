package projections

import (
	"encoding/json"
	"reflect"
	"unsafe"

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
func (p MergeProjection) Apply(state any, e eventstore.Event) any {
	out, _ := p.applySized(state, jsonSize{}, e, nil)
	return out
}

// applySized is Apply that also keeps the state's size (the engine's
// sizedProjection): given the state's size, it returns the new state's. It
// walks only the patch and what the patch removes, never the rest of the
// state, so it costs what decoding the event costs. The objects in own (nil:
// none) are the fold's own: they are changed in place instead of copied.
func (MergeProjection) applySized(state any, size jsonSize, e eventstore.Event, own *ownedObjects) (any, jsonSize) {
	patch, err := decodeJSON(e.Data)
	if err != nil {
		return state, size
	}
	out, d := mergeDelta(state, patch, own)
	return out, size.plus(d)
}

// stateSize measures a state (one read from a snapshot).
func (MergeProjection) stateSize(state any) jsonSize { return sizeOf(state) }

// EncodeState writes the state as JSON, numbers exactly as they came: what
// json.Marshal writes, faster (appendJSON).
func (MergeProjection) EncodeState(s any) (json.RawMessage, error) { return appendJSON(nil, s) }

// encodeSized is EncodeState into a buffer of the state's known size.
func (MergeProjection) encodeSized(s any, size jsonSize) (json.RawMessage, error) {
	return appendJSON(make([]byte, 0, size.text), s)
}

// DecodeState reads a state, keeping numbers as json.Number so that large
// integers survive a snapshot unchanged.
func (MergeProjection) DecodeState(b json.RawMessage) (any, error) { return decodeJSON(b) }

// decodeJSON decodes as encoding/json's Decoder with UseNumber does, with
// jsontext (decodeFast): that Decoder copied the whole input into a buffer
// it grew by doubling, three times the data allocated per event, and
// encoding/json's Unmarshal, which does not copy, has no way to keep numbers
// as json.Number. Inputs jsontext refuses go to encoding/json, so the two
// agree on everything the store can hold.
func decodeJSON(b []byte) (any, error) {
	if v, err := decodeFast(b, jsonNumber); err == nil {
		return v, nil
	}
	return decodeJQSlow(b)
}

func jsonNumber(lit string) any { return json.Number(lit) }

// mergePatch implements the MergePatch function of RFC 7386, section 2,
// without modifying target; the patch's objects may become the result's.
func mergePatch(target, patch any) any {
	out, _ := mergeDelta(target, patch, nil)
	return out
}

// mergeDelta is mergePatch that also returns how the size changed: the
// result's size less the target's. It measures the patch and what the
// patch removes from the target, never what it keeps, so the size of a
// state is known at every event for what the events cost.
//
// The target is never modified, except for the objects in own: the objects
// on the patched paths are copied (and the copies added to own) and the rest
// is shared. The patch is used up: its objects become the result's where
// the target has none (a patch is decoded for one use).
func mergeDelta(target, patch any, own *ownedObjects) (any, jsonSize) {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch, sizeOf(patch).minus(sizeOf(target))
	}
	t, ok := target.(map[string]any)
	if !ok {
		// An object patch on anything else patches an empty object: the
		// result is the patch without its null members.
		out := withoutNulls(p, own)
		return out, sizeOf(out).minus(sizeOf(target))
	}
	before := len(t)
	out := t
	if !own.has(t) {
		out = make(map[string]any, len(t)+len(p))
		for k, v := range t {
			out[k] = v
		}
		own.add(out)
	}
	var d jsonSize
	for k, v := range p {
		old, had := out[k]
		switch {
		case v == nil:
			if had {
				delete(out, k)
				d = d.minus(memberSize(k, old))
			}
		case had:
			nv, dv := mergeDelta(old, v, own)
			out[k] = nv
			d = d.plus(dv)
		default:
			// A new member: what the patch makes of nothing (null).
			nv, dv := mergeDelta(nil, v, own)
			out[k] = nv
			d = d.plus(dv).plus(sizeOf(nil))
			d.text += quotedLen(k) + len(":")
		}
	}
	d.text += commas(len(out)) - commas(before)
	return out, d
}

// withoutNulls removes the null members of obj and of the objects it holds
// (not those in arrays), in place, and adds them to own.
func withoutNulls(obj map[string]any, own *ownedObjects) map[string]any {
	for k, v := range obj {
		switch v := v.(type) {
		case nil:
			delete(obj, k)
		case map[string]any:
			withoutNulls(v, own)
		}
	}
	own.add(obj)
	return obj
}

// ownedObjects are the objects a fold made since its state was last shared
// (offered to the snapshot writer, or at its start): no other state holds
// them, so the fold's next events may change them in place. Without it every
// event copied each object on its path: 99 small patches of an object of
// 300,000 members copied it 99 times, 2 GB for one read. A nil
// *ownedObjects owns nothing.
//
// The set holds our own decoded maps by identity. Go maps are not
// comparable, so a map's identity is the pointer reflect gives for it (a
// documented API, used on our values only, nothing of another package's).
// The keys are unsafe.Pointer, not uintptr, so the set keeps a map it holds
// alive: its address cannot be reused by another map while the fold runs.
type ownedObjects struct{ m map[unsafe.Pointer]struct{} }

func (o *ownedObjects) has(obj map[string]any) bool {
	if o == nil {
		return false
	}
	_, ok := o.m[reflect.ValueOf(obj).UnsafePointer()]
	return ok
}

func (o *ownedObjects) add(obj map[string]any) {
	if o != nil {
		o.m[reflect.ValueOf(obj).UnsafePointer()] = struct{}{}
	}
}

// share gives up every object: the state now has another holder.
func (o *ownedObjects) share() {
	if o != nil {
		clear(o.m)
	}
}
