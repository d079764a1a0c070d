package projections_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

var evictDefs = []projections.Definition{
	{Name: "carts", StreamPrefix: "cart-", EventTypes: []string{"ItemAdded", "ItemRemoved"},
		InitialState: json.RawMessage(`{"total":0,"events":0}`), Reducer: cartReducer},
	{Name: "customers", StreamPrefix: "cart-", PartitionBy: ".data.customer",
		EventTypes: []string{"ItemAdded", "ItemRemoved"}, Reducer: cartReducer},
}

// TestDeclaredEvictsUnderBudget: with a memory budget that holds only about
// half of the states' JSON, the projections evict old states instead of
// faulting, stay within the budget, and still answer exactly what the
// reference fold gives, at every few positions, at times, at every version
// of every partition and through a subscription from the start (evicted
// states are folded again from the kept ones).
func TestDeclaredEvictsUnderBudget(t *testing.T) {
	store, _, _ := openStore(t)
	rng := rand.New(rand.NewSource(23))
	n := 400
	if testing.Short() {
		n = 200
	}
	history := generateHistory(rng, n)
	appendHistory(t, store, history[:len(history)/2])

	// What the states take without a budget: S states, U bytes.
	free := openService(t, store, projections.Options{})
	for _, def := range evictDefs {
		define(t, free, def)
	}
	appendHistory(t, store, history[len(history)/2:])
	log := readLog(t, store)
	head := log[len(log)-1].Position
	var states int64
	for _, def := range evictDefs {
		waitFor(t, def.Name+" at the head", func() bool {
			info, _ := free.Declarative().Projection(def.Name)
			return info.Versions[0].Checkpoint == head
		})
		info, _ := free.Declarative().Projection(def.Name)
		states += int64(info.Versions[0].States)
	}
	used, _ := free.Declarative().Memory()
	json := used - states*64 // stateOverhead
	// Room for every state's overhead and half the JSON; kept states (every
	// 4th and each partition's latest) are about a third of it.
	budget := states*64 + json/2

	// A second instance builds both from the log under the budget.
	svc := openService(t, store, projections.Options{ProjectionMemoryBudget: budget, SnapshotEvery: 4})
	decl := svc.Declarative()
	evicted := 0
	for _, def := range evictDefs {
		waitFor(t, def.Name+" built under the budget", func() bool {
			info, _ := decl.Projection(def.Name)
			return info.ActiveVersion == 1 && info.Versions[0].Checkpoint == head
		})
		info, _ := decl.Projection(def.Name)
		if v := info.Versions[0]; v.Fault != nil || v.States != int(states) && len(evictDefs) == 1 {
			t.Fatalf("%s: %+v", def.Name, v)
		}
		evicted += info.Versions[0].EvictedStates
	}
	if u, _ := decl.Memory(); evicted == 0 || u > budget {
		t.Fatalf("evicted %d states, %d bytes used of a budget of %d", evicted, u, budget)
	}
	for _, tc := range []struct {
		name       string
		byCustomer bool
	}{{"carts", false}, {"customers", true}} {
		t.Run(tc.name, func(t *testing.T) {
			checkReference(t, svc, store, log, rng, tc.name, tc.byCustomer)
			checkReplay(t, decl, log, tc.name, tc.byCustomer)
		})
	}
}

// checkReplay subscribes to every partition from the start and compares
// each state delivered with the reference fold's, in log order.
func checkReplay(t *testing.T, decl *projections.Declarative, log []eventstore.Event, name string, byCustomer bool) {
	ctx := ctxT(t)
	ref, _ := refFold(log, byCustomer)
	var want []string
	for _, ev := range log {
		for k, p := range ref {
			for i, from := range p.from {
				if from == ev.Position {
					want = append(want, fmt.Sprintf("%s v%d @%d %s", k, i+1, from, mustJSON(t, p.states[i])))
				}
			}
		}
	}
	zero := int64(0)
	sub, err := decl.Subscribe(ctx, name, "", &zero, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, w := range want {
		st, err := sub.Recv(ctx)
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if got := fmt.Sprintf("%s v%d @%d %s", st.Key, st.Version, st.Position, st.State); got != w {
			t.Fatalf("state %d: %s, want %s", i, got, w)
		}
	}
}
