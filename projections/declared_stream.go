package projections

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/itchyny/gojq"
)

// A reducerStream runs the reducer over a sequence of inputs in one gojq
// run instead of one run per event. A run allocates its machine (stacks,
// scopes) and grows it as the expression first executes; that was over a
// third of a simple reducer's cost and half of its garbage. The stream
// compiles
//
//	feed | REDUCER | emit
//
// where feed is an iterator that asks Go for the next input lazily, only
// once jq has finished with the previous one, and emit hands each value of
// the reducer to Go and yields nothing. So the next input can depend on the
// previous result (the partition's state), and each input keeps the
// contract of the per-event run (program.reduce): the input is
// {state, event}, one value is expected, and the time limit holds per input.
//
// The two functions have names jq's grammar cannot spell (they contain a
// space), so a reducer cannot call them: they are put into the expression
// as its syntax tree, never parsed.
type reducerStream struct {
	p     *program
	code  *gojq.Code
	clock *callClock
	src   reduction

	cur   any  // the input jq is reducing
	busy  bool // cur was handed to jq and its result not yet to src
	out   any  // the reducer's first value for cur
	outs  int  // how many values it gave
	inSrc bool // src is running (its panics are not jq's)
	ended bool // src said there is no more
}

// A reduction is what a reducerStream folds: it supplies the inputs and
// takes each one's outcome, in order.
type reduction interface {
	// input returns the next {state, event} input, or false to end.
	input() (any, bool)
	// result takes the outcome of the last input: the next state and its
	// JSON, or a fault. False ends the stream.
	result(next any, encoded json.RawMessage, f *stepError) bool
}

const (
	feedName = "hindsight feed"
	emitName = "hindsight emit"
)

// errExtraValue stops a run whose reducer gave a second value.
var errExtraValue = errors.New("the reducer gave more than one value")

func newReducerStream(p *program) (*reducerStream, error) {
	q, err := gojq.Parse(p.def.Reducer)
	if err != nil {
		return nil, err
	}
	call := func(name string) *gojq.Query {
		return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name}}}
	}
	pipe := func(l, r *gojq.Query) *gojq.Query { return &gojq.Query{Left: l, Op: gojq.OpPipe, Right: r} }
	// The reducer as one term, so its own definitions stay its own.
	reducer := &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeQuery, Query: q}}
	s := &reducerStream{p: p, clock: newCallClock()}
	s.code, err = gojq.Compile(pipe(call(feedName), pipe(reducer, call(emitName))),
		gojq.WithIterFunction(feedName, 0, 0, func(any, []any) gojq.Iter { return s }),
		gojq.WithIterFunction(emitName, 0, 0, s.emit))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fold runs src through a reducer stream of p's, taken from p's pool (a
// stream is one fold at a time; compiling one costs more than a short
// fold's events). Every fold goes through it: the runner's, the dry run, a
// read that folds evicted states again, the refill. An error means the
// reducer no longer compiles, which it did when it was defined.
func (p *program) fold(src reduction) error {
	s, _ := p.streams.Get().(*reducerStream)
	if s == nil {
		var err error
		if s, err = newReducerStream(p); err != nil {
			return err
		}
	}
	s.run(src)
	p.streams.Put(s)
	return nil
}

// run folds src's inputs until src ends the stream.
func (s *reducerStream) run(src reduction) {
	s.src = src
	defer func() { s.src, s.cur, s.out = nil, nil, nil }()
	for s.runOnce() {
	}
}

// runOnce is one gojq run over as many inputs as it can: it ends when src
// ends the stream (false), or when one input failed inside jq, whose
// outcome it gives to src; true then means go on with a new run.
func (s *reducerStream) runOnce() (again bool) {
	defer func() {
		// gojq panics on a value of a type it does not know. Inputs come
		// from eventValue and JSON only, so that would be our bug, but it
		// must stop this projection, not the process.
		if r := recover(); r != nil {
			if s.inSrc {
				panic(r)
			}
			again = s.busy && s.deliver(nil, nil, &stepError{kind: FaultRuntimeError, msg: fmt.Sprintf("the reducer failed inside jq: %v", r)})
		}
	}()
	ctx := s.clock.context()
	s.ended = false
	v, ok := s.code.RunWithContext(ctx, nil).Next()
	switch {
	case !ok || s.ended: // feed ended it
		return false
	case !s.busy: // stopped between inputs: only the clock could, and it no longer does
		return true
	}
	err, _ := v.(error) // emit yields nothing: what comes out is an error
	f := jqFault(ctx, err, s.p.timeout)
	switch {
	case errors.Is(err, errExtraValue):
		f = &stepError{kind: FaultRuntimeError, msg: err.Error()}
	case f.kind == FaultTimeout:
		// A starved process can run out of time without the reducer being
		// at fault: the per-event run tries it again (program.run).
		s.stop()
		return s.result(s.p.reduceInput(s.cur, timeoutAttempts-1))
	}
	return s.deliver(nil, nil, f)
}

// Next is feed: it gives the previous input's outcome to src and returns
// the next input, with its time limit started.
func (s *reducerStream) Next() (any, bool) {
	if s.busy {
		ok := false
		if s.outs == 0 {
			ok = s.deliver(nil, nil, &stepError{kind: FaultRuntimeError, msg: "the reducer gave no value", empty: true})
		} else {
			ok = s.deliver(s.p.check(s.out))
		}
		if !ok {
			return nil, false
		}
	}
	s.inSrc = true
	in, ok := s.src.input()
	s.inSrc = false
	if !ok {
		s.ended = true
		return nil, false
	}
	s.cur, s.busy, s.out, s.outs = in, true, nil, 0
	s.clock.arm(s.p.timeout)
	return in, true
}

// emit takes one value of the reducer.
func (s *reducerStream) emit(v any, _ []any) gojq.Iter {
	if s.outs++; s.outs > 1 {
		return gojq.NewIter[any](errExtraValue)
	}
	s.out = v
	return gojq.NewIter[any]()
}

// stop ends the time limit of the input in progress.
func (s *reducerStream) stop() {
	s.clock.disarm()
	s.busy = false
}

// deliver stops the input in progress and gives its outcome to src.
func (s *reducerStream) deliver(next any, encoded json.RawMessage, f *stepError) bool {
	s.stop()
	return s.result(next, encoded, f)
}

func (s *reducerStream) result(next any, encoded json.RawMessage, f *stepError) bool {
	s.inSrc = true
	defer func() { s.inSrc = false }()
	return s.src.result(next, encoded, f)
}
