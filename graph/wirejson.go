package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hindsight-dev/hindsight/internal/jsonvalue"
)

// The request parameters of plain HTTP are decoded with jsontext (the
// encoding/json/v2 prototype) rather than encoding/json, for what a body at
// the 8 MiB limit costs (cmd/abusebench):
//
//   - json.Decoder copies its whole input into a buffer that grows by
//     doubling (31 MiB of garbage for an 8 MiB body), and its scanner runs at
//     about 0.4 GB/s; jsontext parses a bytes.Buffer in place at about
//     3 GB/s.
//   - The variables are not decoded with the envelope. Each is kept as the
//     span of the body it occupies (rawVariables), and documentGate decodes
//     only those the operation declares, once the document is parsed: a
//     variable the operation does not declare is validated but never
//     materialised.
//   - A value at a JSON scalar's position is not decoded into maps and
//     encoded again: scalar.UnmarshalJSON gets it as JSON text
//     (json.RawMessage), the bytes of the body when they are already
//     canonical (canonicalJSON), as a client's JSON.stringify writes them,
//     and are an event's data or metadata (viewFields).
//
// jsontext refuses what RFC 7493 (I-JSON) refuses: invalid UTF-8 (which
// CheckJSONText reports first, more precisely) and an object with the same
// name twice, which encoding/json took with the last value winning.

// rawVariables are a request's variables as spans of its body, by name.
// The spans are views of the body, which nobody writes until the request
// has ended (bodyBuffers).
type rawVariables map[string]jsontext.Value

type rawVariablesKey struct{}

// bodyVariables carries a request's rawVariables in its context to
// documentGate, which takes them (takeRawVariables): the context of a
// subscription lives on, the body need not.
type bodyVariables struct {
	mu  sync.Mutex
	raw rawVariables
	// outlives: the operation may outlive the request (an SSE stream), so
	// its JSON values are copied out of the body instead of viewing it.
	outlives bool
}

func withRawVariables(ctx context.Context, v rawVariables, outlives bool) context.Context {
	return context.WithValue(ctx, rawVariablesKey{}, &bodyVariables{raw: v, outlives: outlives})
}

// takeRawVariables returns the request's rawVariables, once, or nil.
func takeRawVariables(ctx context.Context) (rawVariables, bool) {
	b, _ := ctx.Value(rawVariablesKey{}).(*bodyVariables)
	if b == nil {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	raw := b.raw
	b.raw = nil
	return raw, b.outlives
}

// errNotObject is a parameter (variables, extensions) that is not an
// object.
var errNotObject = errors.New("not an object")

// wireEnvelope is a POST body's parameters: the small ones decoded, the
// variables as spans.
type wireEnvelope struct {
	wire wireParams
	vars rawVariables
	// varsNotObject: variables was there, neither an object nor null.
	varsNotObject bool
}

// decodeEnvelope decodes a request body that is a JSON object, in one pass.
// Unknown members are validated and skipped.
func decodeEnvelope(body []byte) (env wireEnvelope, err error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(body))
	err = jsonvalue.EachMember(dec, func(name string) (err error) {
		switch name {
		case "query":
			env.wire.Query, err = decodeAny(dec)
		case "operationName":
			env.wire.OperationName, err = decodeAny(dec)
		case "extensions":
			env.wire.Extensions, err = decodeAny(dec)
		case "variables":
			env.vars, err = readRawVariables(dec, body)
			if errors.Is(err, errNotObject) {
				env.varsNotObject, err = true, dec.SkipValue()
			}
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return env, err
	}
	return env, jsonvalue.AtEnd(dec)
}

// decodeVariablesParam reads a GET request's variables parameter.
func decodeVariablesParam(b []byte) (vars rawVariables, err error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(b))
	if vars, err = readRawVariables(dec, b); err != nil {
		return nil, err
	}
	return vars, jsonvalue.AtEnd(dec)
}

// readRawVariables reads a variables object as spans of src, dec's input;
// null is no variables; anything else is errNotObject, with the value still
// unread.
func readRawVariables(dec *jsontext.Decoder, src []byte) (rawVariables, error) {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		return nil, err
	case '{':
	default:
		return nil, errNotObject
	}
	vars := rawVariables{}
	err := jsonvalue.EachMember(dec, func(name string) error {
		v, err := dec.ReadValue()
		vars[name] = span(dec, src, v)
		return err
	})
	return vars, err
}

// span returns the bytes of src, dec's input, that hold v, the value dec
// has just read: ReadValue's result is valid only until the next read, the
// same bytes of src stay valid. Its capacity ends with it, so that nobody
// appends into the rest of src.
func span(dec *jsontext.Decoder, src []byte, v jsontext.Value) jsontext.Value {
	end := dec.InputOffset()
	return jsontext.Value(src[end-int64(len(v)) : end : end])
}

// decodeAny decodes the next value as encoding/json decodes into an any,
// with numbers as json.Number (what gqlgen expects of variables).
func decodeAny(dec *jsontext.Decoder) (any, error) {
	return jsonvalue.Decode(dec, func(lit string) any { return json.Number(lit) })
}

// variablesFor decodes the variables the operation declares, each along
// its declared type (decodeTyped); the others stay undecoded.
//
// A JSON value is a view of the body only where viewFields allows it, and
// not at all if copy: elsewhere it has its own bytes.
func (rv rawVariables) variablesFor(schema *ast.Schema, op *ast.OperationDefinition, copy bool) (map[string]any, error) {
	vars := make(map[string]any, len(op.VariableDefinitions))
	for _, def := range op.VariableDefinitions {
		raw, ok := rv[def.Variable]
		if !ok {
			continue
		}
		dec := jsontext.NewDecoder(bytes.NewBuffer(raw))
		var v any
		var err error
		if schema == nil {
			v, err = decodeAny(dec)
		} else {
			v, err = decodeTyped(schema, dec, raw, def.Type, typedAt{views: !copy})
		}
		if err != nil {
			return nil, err
		}
		vars[def.Variable] = v
	}
	return vars, nil
}

// viewFields are the input fields whose JSON values may stay views of the
// body: their one consumer, eventstore.Append, copies them before it
// returns, so they need no copy of their own, and the body's buffer may be
// read into again once the request has ended (bodyBuffers). A JSON value
// anywhere else (a projection's initialState, which is kept) gets its own
// bytes.
var viewFields = map[inputField]bool{{"NewEvent", "data"}: true, {"NewEvent", "metadata"}: true}

// inputField is an input object type's field; the zero value is the top of
// a variable.
type inputField struct{ typ, name string }

// typedAt is where decodeTyped is in a variable: whether the request allows
// views of its body at all, and the input field the value belongs to. (A
// struct, not "Type.field": joining the names made a string for every
// member of every input object, thousands for an append of 1,000 events.)
type typedAt struct {
	views bool
	field inputField
}

// rawScalars are the scalars whose unmarshaler takes JSON text as sent
// (scalar.UnmarshalJSON): their values are handed over as json.RawMessage,
// views of the body, instead of decoded maps to encode again.
var rawScalars = map[string]bool{"JSON": true}

// decodeTyped decodes the next value of dec, whose input is src, along typ:
// a value at a JSON scalar's position stays JSON text; a value whose shape
// does not fit its type is decoded as it is, for gqlparser's validation of
// variables to report.
func decodeTyped(schema *ast.Schema, dec *jsontext.Decoder, src []byte, typ *ast.Type, at typedAt) (any, error) {
	kind := dec.PeekKind()
	if typ.Elem != nil {
		if kind != '[' {
			return decodeTyped(schema, dec, src, typ.Elem, at) // one value stands for a list of one
		}
		l := []any{}
		err := jsonvalue.EachItem(dec, func() error {
			v, err := decodeTyped(schema, dec, src, typ.Elem, at)
			l = append(l, v)
			return err
		})
		return l, err
	}
	def := schema.Types[typ.NamedType]
	switch {
	case def == nil || kind == 'n':
	case def.Kind == ast.Scalar && rawScalars[def.Name]:
		v, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		return canonicalJSON(span(dec, src, v), !at.views || !viewFields[at.field])
	case def.Kind == ast.InputObject && kind == '{':
		m := map[string]any{}
		err := jsonvalue.EachMember(dec, func(name string) (err error) {
			if f := def.Fields.ForName(name); f != nil {
				m[name], err = decodeTyped(schema, dec, src, f.Type, typedAt{views: at.views, field: inputField{def.Name, name}})
			} else {
				m[name], err = decodeAny(dec)
			}
			return err
		})
		return m, err
	}
	return decodeAny(dec)
}

// canonicalJSON returns raw, a valid JSON value, as encoding would write
// it: compact, strings with the fewest escapes (as the scalar's decode and
// encode did before, so that "a\ud83d\ude00b" is stored as "a😀b"). The
// usual value, already so, is returned as it is, a view of the body (a copy
// if copy); only one with escapes or white space is written anew.
func canonicalJSON(raw []byte, copy bool) (json.RawMessage, error) {
	switch {
	case !isCanonical(raw):
		return jsontext.AppendFormat(make([]byte, 0, len(raw)), raw)
	case copy:
		return bytes.Clone(raw), nil
	}
	return raw, nil
}

// isCanonical reports whether raw, valid JSON, has no escape (no
// backslash anywhere) and no white space outside its strings.
func isCanonical(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') < 0 && !jsonvalue.SpaceOutsideStrings(raw)
}

// jsonProblem says more of what is wrong with a body where the general
// "not valid JSON" would leave a client guessing: a name twice in one
// object, which encoding/json took.
func jsonProblem(err error) string {
	if errors.Is(err, jsontext.ErrDuplicateName) {
		return ": an object has the same name twice"
	}
	return ""
}
