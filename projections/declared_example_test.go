package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// A declarative projection: the total of each cart, defined at run time
// with a jq reducer, read now and as it was.
func ExampleDeclarative_Define() {
	store, svc, done := exampleService()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	decl := svc.Declarative()

	add := func(cart string, cents int) int64 {
		data, _ := json.Marshal(map[string]int{"cents": cents})
		res, err := store.Append(ctx, cart, eventstore.Any{}, eventstore.NewEvent{Type: "ItemAdded", Data: data})
		if err != nil {
			panic(err)
		}
		return res.LastPosition
	}
	first := add("cart-1", 250)
	add("cart-1", 100)

	v, dry, err := decl.Define(ctx, projections.Definition{
		Name:         "cart-totals",
		StreamPrefix: "cart-",
		EventTypes:   []string{"ItemAdded"},
		InitialState: json.RawMessage(`{"cents":0}`),
		Reducer:      `.state.cents += .event.data.cents | .state`,
	}, eventstore.NoStream{})
	if err != nil {
		panic(err)
	}
	fmt.Println("defined version", v.Version, "; the dry run folded", dry.Events, "events:", string(dry.Partitions[0].State))

	now, err := decl.State(ctx, "cart-totals", "cart-1", eventstore.Now(), nil)
	if err != nil {
		panic(err)
	}
	then, err := decl.State(ctx, "cart-totals", "cart-1", eventstore.AtPosition(first), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("now:", string(now.State), "at its first event:", string(then.State))

	// Output:
	// defined version 1 ; the dry run folded 2 events: {"cents":350}
	// now: {"cents":350} at its first event: {"cents":250}
}
