package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/itchyny/gojq"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// program is a definition compiled with gojq, with the limits every call
// runs under. jq values are immutable by gojq's contract (updates copy), so
// a state can be shared by the timeline, the next reduction and readers.
type program struct {
	def      Definition
	reducer  *gojq.Code
	key      *gojq.Code // nil = stream id
	keyPath  []string   // the key as a plain path of fields (.data.customerId), when it is one
	initial  map[string]any
	timeout  time.Duration
	maxState int

	mu    sync.Mutex // one call at a time: the clock is reused
	clock *callClock
	// streams are idle reducer streams for folds off the runner (fold).
	streams sync.Pool
}

// compileJQ parses and compiles one expression. No environment reaches it:
// without an environ loader, jq's $ENV and env are empty, so a reducer
// cannot read the server's secrets; input/inputs are not allowed.
func compileJQ(what, src string) (*gojq.Code, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, invalidInput("%s does not parse: %s", what, err)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, invalidInput("%s does not compile: %s", what, err)
	}
	return code, nil
}

// compile checks and compiles a definition.
func compile(d Definition, timeout time.Duration, maxState int) (*program, error) {
	d, err := d.normalize()
	if err != nil {
		return nil, err
	}
	p := &program{def: d, timeout: timeout, maxState: maxState}
	if p.reducer, err = compileJQ("the reducer", d.Reducer); err != nil {
		return nil, err
	}
	if d.PartitionBy != "" {
		if p.key, err = compileJQ("partitionBy", d.PartitionBy); err != nil {
			return nil, err
		}
		if q, err := gojq.Parse(d.PartitionBy); err == nil {
			p.keyPath = plainPath(q)
		}
	}
	initial, err := decodeJQ(d.InitialState)
	if p.initial, _ = initial.(map[string]any); err != nil || p.initial == nil {
		return nil, invalidInput("the initial state must be a JSON object")
	}
	if len(d.InitialState) > maxState {
		return nil, invalidInput("the initial state is over the state size limit of %d bytes", maxState)
	}
	return p, nil
}

// eventValue is the event as jq sees it. Numbers are int, float64 or
// *big.Int, the only kinds gojq knows: an int64 there made gojq panic on
// the first arithmetic or comparison (.event.version + 1).
func eventValue(ev *eventstore.Event) map[string]any {
	v := map[string]any{
		"id": ev.ID, "streamId": ev.StreamID, "version": int(ev.Version), "position": int(ev.Position),
		"type": ev.Type, "recordedAt": ev.RecordedAt.UTC().Format(time.RFC3339Nano),
		"data": jqDecode(ev.Data), "metadata": jqDecode(ev.Metadata),
	}
	return v
}

// stepError is a reducer fault without its event.
type stepError struct {
	kind  FaultKind
	msg   string
	empty bool // the expression gave no value
}

// timeoutAttempts is how often a call that ran out of time is tried before
// it is a TIMEOUT fault. The limit is wall-clock time, which a starved
// process (a full CPU, a GC pause) can use up without the reducer being at
// fault; a reducer that really loops runs out every time.
const timeoutAttempts = 3

// run runs code on input with the time limit and returns its first value.
// A second value is an error: a reducer must be a function. A time-out is
// tried again, up to attempts times in all.
func (p *program) run(code *gojq.Code, input any, what string, attempts int) (any, *stepError) {
	for attempt := 1; ; attempt++ {
		v, f := p.runOnce(code, input, what)
		if f == nil || f.kind != FaultTimeout || attempt >= attempts {
			return v, f
		}
	}
}

func (p *program) runOnce(code *gojq.Code, input any, what string) (v any, f *stepError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// gojq panics on a value of a type it does not know. Values come from
	// eventValue and JSON only, so that would be our bug, but it must stop
	// this projection, not the process.
	defer func() {
		if r := recover(); r != nil {
			v, f = nil, &stepError{kind: FaultRuntimeError, msg: fmt.Sprintf("%s failed inside jq: %v", what, r)}
		}
	}()
	if p.clock == nil {
		p.clock = newCallClock()
	}
	ctx := p.clock.arm(p.timeout)
	defer p.clock.disarm()
	iter := code.RunWithContext(ctx, input)
	v, ok := iter.Next()
	if !ok {
		return nil, &stepError{kind: FaultRuntimeError, msg: what + " gave no value", empty: true}
	}
	if err, isErr := v.(error); isErr {
		return nil, jqFault(ctx, err, p.timeout)
	}
	if extra, more := iter.Next(); more {
		if err, isErr := extra.(error); isErr {
			return nil, jqFault(ctx, err, p.timeout)
		}
		return nil, &stepError{kind: FaultRuntimeError, msg: what + " gave more than one value"}
	}
	return v, nil
}

func jqFault(ctx context.Context, err error, limit time.Duration) *stepError {
	if err == nil {
		return &stepError{kind: FaultRuntimeError, msg: "jq stopped without an error"}
	}
	// A timeout may surface as the context's error or as a jq error raised
	// after the deadline; either way the deadline decides.
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return &stepError{kind: FaultTimeout, msg: fmt.Sprintf("took longer than the limit of %v for one event, %d times", limit, timeoutAttempts)}
	}
	return &stepError{kind: FaultRuntimeError, msg: err.Error()}
}

// reduce returns the next state of a partition, and its JSON encoding.
// States are kept encoded: a byte slice costs the garbage collector nothing
// to scan and a fraction of the memory of the jq value, and readers get
// JSON without encoding it.
func (p *program) reduce(state any, event map[string]any) (any, json.RawMessage, *stepError) {
	return p.reduceInput(reducerInput(state, event), timeoutAttempts)
}

// reducerInput is what the reducer reads: {state, event}.
func reducerInput(state any, event map[string]any) map[string]any {
	return map[string]any{"state": state, "event": event}
}

func (p *program) reduceInput(input any, attempts int) (any, json.RawMessage, *stepError) {
	next, f := p.run(p.reducer, input, "the reducer", attempts)
	if f != nil {
		return nil, nil, f
	}
	return p.check(next)
}

// check takes a value the reducer gave: it must be an object, and its JSON
// within the size limit.
func (p *program) check(next any) (any, json.RawMessage, *stepError) {
	if _, ok := next.(map[string]any); !ok {
		return nil, nil, &stepError{kind: FaultNotAnObject, msg: fmt.Sprintf("the reducer gave %s, not an object", jqTypeOf(next))}
	}
	// jq's own encoding: no reflection, and jq's answers for what JSON
	// cannot hold (NaN is null, infinities the largest numbers).
	b, err := gojq.Marshal(next)
	if err != nil {
		return nil, nil, &stepError{kind: FaultRuntimeError, msg: "the state cannot be written as JSON: " + err.Error()}
	}
	if len(b) > p.maxState {
		return nil, nil, &stepError{kind: FaultStateTooLarge, msg: fmt.Sprintf("the state is %d bytes as JSON; the limit is %d", len(b), p.maxState)}
	}
	return next, b, nil
}

// partitionKey returns the event's partition key; "" means the expression
// gave null (the caller then uses the stream's last key).
func (p *program) partitionKey(ev *eventstore.Event, event map[string]any) (string, *stepError) {
	if p.key == nil {
		return ev.StreamID, nil
	}
	v, ok := followPath(event, p.keyPath)
	var f *stepError
	if !ok {
		v, f = p.run(p.key, event, "partitionBy", timeoutAttempts)
	}
	if f != nil && f.empty {
		v, f = nil, nil // no value is null: the stream's last partition
	}
	if f != nil {
		return "", f
	}
	var key string
	switch k := v.(type) {
	case nil:
		return "", nil
	case string:
		key = k
	case int:
		key = strconv.Itoa(k)
	case float64:
		key = strconv.FormatFloat(k, 'f', -1, 64)
	case *big.Int:
		key = k.String()
	case json.Number:
		key = numberKey(k)
	default:
		return "", &stepError{kind: FaultPartitionKey, msg: fmt.Sprintf("partitionBy gave %s; a key is a string or a number", jqTypeOf(v))}
	}
	if key == "" || len(key) > MaxPartitionKeyLength {
		return "", &stepError{kind: FaultPartitionKey, msg: fmt.Sprintf("a partition key is 1 to %d bytes, got %d", MaxPartitionKeyLength, len(key))}
	}
	return key, nil
}

// partitioner applies the partition rule to a definition's matching
// events, in log order: the key partitionBy gives (or the stream id), and
// for a jq key that gives null the partition of the stream's last keyed
// event, or none. The runner and the dry run both go through it.
type partitioner struct {
	prog   *program
	sticky map[string]string // stream id -> its last partition key (jq keys only)
}

func newPartitioner(p *program) partitioner { return partitioner{prog: p, sticky: map[string]string{}} }

// key returns the event's partition; "" means it has none and is skipped.
func (pt *partitioner) key(ev *eventstore.Event, event map[string]any) (string, *stepError) {
	key, f := pt.prog.partitionKey(ev, event)
	switch {
	case f != nil:
		return "", f
	case key == "": // partitionBy gave null: the stream's last partition
		return pt.sticky[ev.StreamID], nil
	case pt.prog.key != nil:
		pt.sticky[ev.StreamID] = key
	}
	return key, nil
}

// numberKey is the key of a number read from JSON, written as the number
// gojq makes of it (its parseNumber) would be: 7.0 is "7", a large integer
// all its digits, -0 "0".
func numberKey(n json.Number) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if b, ok := new(big.Int).SetString(s, 10); ok {
			return b.String()
		}
	}
	f, _ := n.Float64() // out of range: an infinity, as gojq
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func jqTypeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a number"
}

// plainPath returns the fields of a query that is only a path of field
// names, such as .data.customerId, the usual partition key; nil otherwise.
// Such a key is read directly, without running jq, which halves the cost of
// a jq-keyed projection's key.
func plainPath(q *gojq.Query) []string {
	if q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 || q.Left != nil || q.Right != nil ||
		len(q.Patterns) > 0 || q.Term == nil || q.Term.Type != gojq.TermTypeIndex || !plainIndex(q.Term.Index) {
		return nil
	}
	path := []string{q.Term.Index.Name}
	for _, s := range q.Term.SuffixList {
		if s.Iter || s.Optional || !plainIndex(s.Index) {
			return nil
		}
		path = append(path, s.Index.Name)
	}
	return path
}

func plainIndex(ix *gojq.Index) bool {
	return ix != nil && ix.Name != "" && ix.Str == nil && ix.Start == nil && ix.End == nil && !ix.IsSlice
}

// followPath reads a plain path as jq would where that is plain: through
// objects, and null past a missing or null member. Anything else (indexing
// a string, say, which is a jq error) is left to jq (ok false).
func followPath(v any, path []string) (any, bool) {
	if path == nil {
		return nil, false
	}
	for _, name := range path {
		switch x := v.(type) {
		case nil:
			return nil, true
		case map[string]any:
			v = x[name]
		default:
			return nil, false
		}
	}
	return v, true
}
