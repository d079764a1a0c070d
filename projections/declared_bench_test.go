package projections

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// BenchmarkDeclaredStep is one event through a jq-keyed projection's step,
// without a store: the event as jq sees it, its partition key, the reducer
// and the state's encoding, with one gojq run per event (program.reduce: the
// dry run, and folds of evicted states). It isolates the cost around gojq
// from reading the log; BenchmarkDeclaredStream is the same through a
// reducerStream, as cmd/projbench's by-customer build folds.
func BenchmarkDeclaredStep(b *testing.B) {
	prog, events := benchProgram(b)
	latest := map[string]any{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &events[i%len(events)]
		event := eventValue(ev)
		key, f := prog.partitionKey(ev, event)
		if f != nil {
			b.Fatal(f.msg)
		}
		prev, ok := latest[key]
		if !ok {
			prev = prog.initial
		}
		next, _, f := prog.reduce(prev, event)
		if f != nil {
			b.Fatal(f.msg)
		}
		latest[key] = next
	}
}

// BenchmarkDeclaredStream is BenchmarkDeclaredStep through a
// reducerStream, as a runner folds: one gojq run for every event.
func BenchmarkDeclaredStream(b *testing.B) {
	prog, events := benchProgram(b)
	stream, err := newReducerStream(prog)
	if err != nil {
		b.Fatal(err)
	}
	src := &benchFeed{prog: prog, events: events, n: b.N, latest: map[string]any{}}
	b.ReportAllocs()
	b.ResetTimer()
	stream.run(src)
	if src.done != b.N || src.fault != nil {
		b.Fatalf("%d of %d events, fault %v", src.done, b.N, src.fault)
	}
}

// benchProgram is cmd/projbench's by-customer definition, and 1,000
// events for it.
func benchProgram(b *testing.B) (*program, []eventstore.Event) {
	prog, err := compile(Definition{Name: "by-customer", StreamPrefix: "order-", PartitionBy: ".data.customerId",
		Reducer: `.state.quantity += (.event.data.quantity // 0) | .state.events += 1 | .state`}, time.Second, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]eventstore.Event, 1000)
	for i := range events {
		events[i] = eventstore.Event{ID: fmt.Sprintf("id-%d", i), StreamID: fmt.Sprintf("order-%d", i%50), Version: int64(i),
			Position: int64(i + 1), Type: "OrderItemAdded", RecordedAt: time.Unix(1700000000, int64(i)),
			Data: json.RawMessage(fmt.Sprintf(`{"customerId":"c-%d","sku":"S%d","quantity":%d,"unitPriceCents":%d}`, i%20, i%900, 1+i%5, 100+i%50))}
	}
	return prog, events
}

// benchFeed is a reduction over n events, keeping each partition's state.
type benchFeed struct {
	prog       *program
	events     []eventstore.Event
	n, i, done int
	key        string
	latest     map[string]any
	fault      *stepError
}

func (f *benchFeed) input() (any, bool) {
	if f.i == f.n {
		return nil, false
	}
	ev := &f.events[f.i%len(f.events)]
	f.i++
	event := eventValue(ev)
	key, sf := f.prog.partitionKey(ev, event)
	if sf != nil {
		f.fault = sf
		return nil, false
	}
	prev, ok := f.latest[key]
	if !ok {
		prev = f.prog.initial
	}
	f.key = key
	return reducerInput(prev, event), true
}

func (f *benchFeed) result(next any, _ json.RawMessage, sf *stepError) bool {
	if sf != nil {
		f.fault = sf
		return false
	}
	f.latest[f.key] = next
	f.done++
	return true
}

// BenchmarkJQDecode is an event's data as jq reads it, against
// json.Unmarshal into any (which rounds large integers) in the same run.
func BenchmarkJQDecode(b *testing.B) {
	data := []byte(`{"sku":"S17","quantity":3,"unitPriceCents":117}`)
	b.Run("jqDecode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if jqDecode(data) == nil {
				b.Fatal("nil")
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var v any
			if json.Unmarshal(data, &v) != nil {
				b.Fatal("error")
			}
		}
	})
}
