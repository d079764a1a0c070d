package projections_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

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
	rng := rand.New(rand.NewSource(23))
	n := 400
	if testing.Short() {
		n = 200
	}
	history := generateHistory(rng, n)

	// What the states take without a budget, on a store of their own (an
	// instance on the same store would restore from this one's snapshots):
	// S states, U bytes.
	freeStore, _, _ := openStore(t)
	appendHistory(t, freeStore, history)
	free := openService(t, freeStore, projections.Options{})
	var states int64
	for _, def := range evictDefs {
		define(t, free, def)
		waitFor(t, def.Name+" at the head", func() bool {
			info, _ := free.Declarative().Projection(def.Name)
			return info.ActiveVersion == 1 && info.Versions[0].Checkpoint == freeStore.HeadPosition()
		})
		info, _ := free.Declarative().Projection(def.Name)
		states += int64(info.Versions[0].States)
	}
	used, _ := free.Declarative().Memory()
	json := used - states*64 // stateOverhead
	// Room for every state's overhead and half the JSON; kept states (every
	// 4th and each partition's latest) are about a third of it.
	budget := states*64 + json/2

	// The same history under the budget: half before the definitions
	// (built from the log), half after (live).
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{ProjectionMemoryBudget: budget, SnapshotEvery: 4})
	decl := svc.Declarative()
	appendHistory(t, store, history[:len(history)/2])
	for _, def := range evictDefs {
		define(t, svc, def)
	}
	appendHistory(t, store, history[len(history)/2:])
	log := readLog(t, store)
	head := log[len(log)-1].Position
	evicted := 0
	for _, def := range evictDefs {
		waitFor(t, def.Name+" built under the budget", func() bool {
			info, _ := decl.Projection(def.Name)
			return info.ActiveVersion == 1 && info.Versions[0].Checkpoint == head
		})
		info, _ := decl.Projection(def.Name)
		if v := info.Versions[0]; v.Fault != nil || v.RestoredFrom != 0 {
			t.Fatalf("%s: %+v", def.Name, v)
		}
		evicted += info.Versions[0].EvictedStates
	}
	if u, _ := decl.Memory(); evicted == 0 || u > budget {
		t.Fatalf("evicted %d states, %d bytes used of a budget of %d", evicted, u, budget)
	}
	for _, tc := range cartProjections {
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

// TestDeclaredResumesFromSnapshots: an instance that starts where another
// built the projections restores them from that one's snapshots up to the
// position it built to (no reducer runs there), folds the events after it
// from the restored states, and answers exactly what the reference fold
// gives everywhere: every few positions, times, every version, a replay.
func TestDeclaredResumesFromSnapshots(t *testing.T) {
	store, _, _ := openStore(t)
	rng := rand.New(rand.NewSource(29))
	n := 400
	if testing.Short() {
		n = 200
	}
	history := generateHistory(rng, n)
	cut := len(history) * 3 / 4
	appendHistory(t, store, history[:cut])
	opts := projections.Options{SnapshotEvery: 4, Logger: quietLog}
	first, err := projections.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	built := store.HeadPosition()
	for _, def := range evictDefs {
		define(t, first, def)
	}
	for _, def := range evictDefs {
		waitFor(t, def.Name+" built and marked", func() bool {
			info, _ := first.Declarative().Projection(def.Name)
			return info.ActiveVersion == 1 && info.Versions[0].SnapshotsUpTo >= built
		})
	}
	marked := make([]int64, len(evictDefs))
	for i, def := range evictDefs {
		info, _ := first.Declarative().Projection(def.Name)
		marked[i] = info.Versions[0].SnapshotsUpTo
	}
	appendHistory(t, store, history[cut:]) // folded after the restore
	// What the first instance holds in the end, for the refill below.
	stateBytes := map[string]int64{}
	for _, def := range evictDefs {
		waitFor(t, def.Name+" at the head on the first instance", func() bool {
			info, _ := first.Declarative().Projection(def.Name)
			stateBytes[def.Name] = info.Versions[0].StateBytes
			return info.Versions[0].Checkpoint == store.HeadPosition()
		})
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	svc := openService(t, store, projections.WithoutRefill(opts))
	decl := svc.Declarative()
	log := readLog(t, store)
	head := log[len(log)-1].Position
	for i, def := range evictDefs {
		waitFor(t, def.Name+" restored and caught up", func() bool {
			info, _ := decl.Projection(def.Name)
			return info.ActiveVersion == 1 && info.Versions[0].Checkpoint == head
		})
		if info, _ := decl.Projection(def.Name); info.Versions[0].RestoredFrom != marked[i] || info.Versions[0].Fault != nil {
			t.Fatalf("%s: restored up to %d, want %d: %+v", def.Name, info.Versions[0].RestoredFrom, marked[i], info.Versions[0])
		}
	}
	for _, tc := range cartProjections {
		t.Run(tc.name, func(t *testing.T) {
			checkReference(t, svc, store, log, rng, tc.name, tc.byCustomer)
			checkReplay(t, decl, log, tc.name, tc.byCustomer)
			// Reads of restored states started from the first instance's
			// snapshots, not from the initial state.
			if info, _ := decl.Projection(tc.name); info.Versions[0].SnapshotsRead == 0 {
				t.Fatalf("no state was read from a snapshot: %+v", info.Versions[0])
			}
		})
	}
	// Another instance, with the refill: in the background every restored
	// state gets its JSON back, and the answers stay the same.
	refilled := openService(t, store, opts)
	for _, tc := range cartProjections {
		waitFor(t, tc.name+" refilled", func() bool {
			info, _ := refilled.Declarative().Projection(tc.name)
			return info.ActiveVersion == 1 && info.Versions[0].StateBytes == stateBytes[tc.name]
		})
		if info, _ := refilled.Declarative().Projection(tc.name); info.Versions[0].RestoredFrom == 0 {
			t.Fatalf("%s was folded, not restored: %+v", tc.name, info.Versions[0])
		}
		checkReference(t, refilled, store, log, rng, tc.name, tc.byCustomer)
	}
}

// TestDeclaredRestoreReadsOnlyItsVersion: after a redefinition, a restarted
// instance restores the new version from the new version's snapshots only:
// every state it answers is the new reducer's, at every version.
func TestDeclaredRestoreReadsOnlyItsVersion(t *testing.T) {
	store, _, _ := openStore(t)
	ctx := ctxT(t)
	opts := projections.Options{SnapshotEvery: 4, Logger: quietLog}
	first, err := projections.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	const streams, events = 3, 10
	for i := 0; i < streams*events; i++ {
		if _, err := store.Append(ctx, fmt.Sprintf("r-%d", i%streams), eventstore.Any{},
			eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for v, reducer := range []string{`.state.n += 1 | .state`, `.state.n += 10 | .state`} {
		define(t, first, projections.Definition{Name: "counts", StreamPrefix: "r-", Reducer: reducer})
		waitFor(t, fmt.Sprintf("version %d built and marked", v+1), func() bool {
			info, _ := first.Declarative().Projection("counts")
			return info.ActiveVersion == int64(v+1) && info.Versions[v].SnapshotsUpTo > 0
		})
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	svc := openService(t, store, projections.WithoutRefill(opts))
	decl := svc.Declarative()
	waitFor(t, "version 2 restored", func() bool {
		info, _ := decl.Projection("counts")
		return info.ActiveVersion == 2
	})
	if info, _ := decl.Projection("counts"); info.Versions[1].RestoredFrom == 0 {
		t.Fatalf("version 2 was folded, not restored: %+v", info.Versions[1])
	}
	for s := 0; s < streams; s++ {
		for v := int64(1); v <= events; v++ {
			st, err := decl.State(ctx, "counts", fmt.Sprintf("r-%d", s), eventstore.AtVersion(v), nil)
			if err != nil || st.DefinitionVersion != 2 || string(st.State) != fmt.Sprintf(`{"n":%d}`, 10*v) {
				t.Fatalf("r-%d at version %d: %s (definition %d), %v; want {\"n\":%d}", s, v, st.State, st.DefinitionVersion, err, 10*v)
			}
		}
	}
	if info, _ := decl.Projection("counts"); info.Versions[1].SnapshotsRead == 0 {
		t.Fatalf("no read started from a snapshot: %+v", info.Versions[1])
	}
}

// TestDeclaredDropsReplacedSnapshots: once a new version has replaced the
// old one, the old one's snapshots and marker are deleted from the store;
// the new one's stay.
func TestDeclaredDropsReplacedSnapshots(t *testing.T) {
	store, _, _ := openStore(t)
	ctx := ctxT(t)
	svc := openService(t, store, projections.Options{SnapshotEvery: 4, LagWait: 10 * time.Millisecond, Logger: quietLog})
	for i := 0; i < 24; i++ {
		if _, err := store.Append(ctx, fmt.Sprintf("r-%d", i%2), eventstore.Any{},
			eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	defs := []projections.Definition{
		{Name: "counts", StreamPrefix: "r-", Reducer: `.state.n += 1 | .state`},
		{Name: "counts", StreamPrefix: "r-", Reducer: `.state.n += 10 | .state`},
	}
	// have says whether version v's marker and its partition r-0's 8th
	// state (a kept one) are in the store.
	have := func(v int) (marker, kept bool) {
		name := projections.SnapshotName(defs[v-1])
		_, err := store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: projections.DefinitionStreamID("counts"),
			Projection: name, SchemaVersion: v, At: eventstore.Now()})
		marker = err == nil
		_, err = store.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: "r-0", Projection: name + "@8", SchemaVersion: v, At: eventstore.Now()})
		return marker, err == nil
	}
	for v := 1; v <= 2; v++ {
		define(t, svc, defs[v-1])
		waitFor(t, fmt.Sprintf("version %d built and marked", v), func() bool {
			info, _ := svc.Declarative().Projection("counts")
			return info.ActiveVersion == int64(v) && info.Versions[v-1].SnapshotsUpTo > 0
		})
		if marker, kept := have(v); !marker || !kept {
			t.Fatalf("version %d: marker saved %v, kept state saved %v", v, marker, kept)
		}
	}
	waitFor(t, "version 1's snapshots deleted", func() bool {
		marker, kept := have(1)
		return !marker && !kept
	})
	// Another instance on the store loads its snapshots from the store.
	again := openService(t, store, projections.Options{SnapshotEvery: 4, Logger: quietLog})
	waitFor(t, "version 2 restored", func() bool {
		info, _ := again.Declarative().Projection("counts")
		return info.ActiveVersion == 2
	})
	if info, _ := again.Declarative().Projection("counts"); info.Versions[1].RestoredFrom == 0 {
		t.Fatalf("version 2 was folded, not restored: %+v", info.Versions[1])
	}
	if marker, kept := have(2); !marker || !kept {
		t.Fatalf("version 2's snapshots: marker %v, kept state %v", marker, kept)
	}
}
