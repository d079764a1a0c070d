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
// and the state's encoding (what cmd/projbench's by-customer build does per
// event). It isolates the cost around gojq from reading the log.
func BenchmarkDeclaredStep(b *testing.B) {
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
