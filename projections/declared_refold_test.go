package projections_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// The paths that fold off the runner's goroutine (the dry run, a read of an
// evicted or restored state, the refill) go through reducer streams like
// the runner. Their states are checked against the reference fold by
// TestDeclaredEvictsUnderBudget and TestDeclaredResumesFromSnapshots (reads
// that fold again, with and without the refill) and by
// TestDryRunMatchesReferenceFold below; these tests add their faults.

// TestDryRunMatchesReferenceFold: the dry run's partitions are the
// reference fold of the most recent matching events alone, each partition
// from the initial state, for both kinds of partitioning.
func TestDryRunMatchesReferenceFold(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	appendHistory(t, store, generateHistory(rand.New(rand.NewSource(31)), 300))
	log := readLog(t, store)
	// The tail of the log that holds the last DryRunEvents matching events.
	from, matching, lastMatching := len(log), 0, int64(0)
	for from > 0 && matching < projections.DryRunEvents {
		from--
		if ev := log[from]; strings.HasPrefix(ev.StreamID, "cart-") && (ev.Type == "ItemAdded" || ev.Type == "ItemRemoved") {
			matching++
			lastMatching = max(lastMatching, ev.Position)
		}
	}
	for _, tc := range cartProjections {
		t.Run(tc.name, func(t *testing.T) {
			def := evictDefs[0]
			if tc.byCustomer {
				def = evictDefs[1]
			}
			_, dry, err := svc.Declarative().Define(ctxT(t), def, nil)
			if err != nil {
				t.Fatal(err)
			}
			ref, order := refFold(log[from:], tc.byCustomer)
			events := 0
			for _, p := range ref {
				events += len(p.states)
			}
			if dry.Events != events || dry.ToPosition != lastMatching {
				t.Fatalf("the dry run folded %d events up to %d; the reference %d", dry.Events, dry.ToPosition, events)
			}
			want := min(len(order), projections.DryRunSample)
			if len(dry.Partitions) != want {
				t.Fatalf("%d partitions reported, want %d", len(dry.Partitions), want)
			}
			for _, got := range dry.Partitions {
				p := ref[got.Key]
				if p == nil {
					t.Fatalf("partition %q is not in the reference", got.Key)
				}
				n := len(p.states)
				if got.Version != int64(n) || got.Position != p.from[n-1] || string(got.State) != mustJSON(t, p.states[n-1]) {
					t.Fatalf("%s: version %d at %d %s; want version %d at %d %s", got.Key, got.Version, got.Position, got.State,
						n, p.from[n-1], mustJSON(t, p.states[n-1]))
				}
			}
		})
	}
}

// TestDryRunFaults: a definition whose reducer (or key) faults on one of
// the most recent matching events is refused, naming that event's position,
// the kind and the message, and is not recorded.
func TestDryRunFaults(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{ReducerTimeout: 50 * time.Millisecond, MaxStateBytes: 1000})
	ctx := ctxT(t)
	decl := svc.Declarative()
	mustAppend := func(stream, data string) int64 {
		t.Helper()
		res, err := store.Append(ctx, stream, eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(data)})
		if err != nil {
			t.Fatal(err)
		}
		return res.LastPosition
	}
	for i, c := range reducerFaults { // the runner's, in TestDeclaredFaultsAreContained
		t.Run(c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("d%d-", i)
			mustAppend(prefix+"1", `{}`)
			at := mustAppend(prefix+"2", c.trigger)
			mustAppend(prefix+"1", `{}`) // after the fault: not reached
			_, _, err := decl.Define(ctx, projections.Definition{Name: c.name, StreamPrefix: prefix, PartitionBy: c.partitionBy, Reducer: c.reducer}, nil)
			want := fmt.Sprintf("failed at position %d (stream %q, event T, version 1): %s: ", at, prefix+"2", c.kind)
			if !errors.Is(err, projections.ErrInvalidInput) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("define: %v; want it refused with %q and %q", err, want, c.message)
			}
			if _, ok := decl.Projection(c.name); ok {
				t.Fatalf("the refused definition was recorded")
			}
		})
	}
}

// syncBuffer is a log destination tests read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// growDefs: "grow" appends each event's pad to a string, so that its state
// after n events of a partition is 11+10n bytes of JSON; "count" only
// counts.
var growDefs = []projections.Definition{
	{Name: "grow", StreamPrefix: "g-", InitialState: json.RawMessage(`{"blob":""}`), Reducer: `.state.blob += .event.data.pad | .state`},
	{Name: "count", StreamPrefix: "g-", Reducer: `.state.n += 1 | .state`},
}

func growState(n int) string { return `{"blob":"` + strings.Repeat("x", 10*n) + `"}` }

// buildGrown builds growDefs on a first instance, with its snapshots every
// 4th state, over g-2 (3 events) then g-1 (14 events), closes it, and
// returns the positions of g-1's events.
func buildGrown(t *testing.T, store *eventstore.Store) []int64 {
	ctx := ctxT(t)
	pad := json.RawMessage(`{"pad":"xxxxxxxxxx"}`)
	var g1 []int64
	for i := 0; i < 17; i++ {
		stream := "g-1"
		if i < 3 {
			stream = "g-2"
		}
		res, err := store.Append(ctx, stream, eventstore.Any{}, eventstore.NewEvent{Type: "Grown", Data: pad})
		if err != nil {
			t.Fatal(err)
		}
		if stream == "g-1" {
			g1 = append(g1, res.LastPosition)
		}
	}
	first, err := projections.New(store, projections.Options{SnapshotEvery: 4, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	for _, def := range growDefs {
		define(t, first, def)
		waitFor(t, def.Name+" built and marked", func() bool {
			info, _ := first.Declarative().Projection(def.Name)
			return info.Versions[0].SnapshotsUpTo == store.HeadPosition()
		})
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return g1
}

// grownLimit holds 10 events of "grow" in a partition, not 11: an instance
// restarted with it restores states it would not accept now.
const grownLimit = 11 + 10*10

// checkTooLarge checks that err is the STATE_TOO_LARGE fault of "grow" at
// position at.
func checkTooLarge(t *testing.T, err error, at int64) {
	t.Helper()
	var fe *projections.FaultError
	if !errors.As(err, &fe) || !errors.Is(err, projections.ErrProjectionFaulted) || fe.Fault.Position != at ||
		fe.Fault.Kind != projections.FaultStateTooLarge || fe.Fault.StreamID != "g-1" ||
		!strings.Contains(fe.Fault.Message, fmt.Sprintf("the limit is %d", grownLimit)) {
		t.Fatalf("%v; want STATE_TOO_LARGE at %d", err, at)
	}
}

// TestRefoldFaultIsContained: an instance restarted with a lower state
// limit restores states it would not accept now. A read of one folds it
// again from the snapshot before it, through a reducer stream: the read
// fails with PROJECTION_FAULTED naming the first event over the limit,
// reads before it answer exactly, and the other projection, appends and
// the runner (until a live event needs that partition's latest state) go
// on. The live event then faults the runner at its own position.
func TestRefoldFaultIsContained(t *testing.T) {
	store, _, _ := openStore(t)
	g1 := buildGrown(t, store)
	ctx := ctxT(t)
	svc := openService(t, store, projections.WithoutRefill(projections.Options{SnapshotEvery: 4, MaxStateBytes: grownLimit}))
	decl := svc.Declarative()
	for _, def := range growDefs {
		waitActive(t, svc, def.Name, 1)
	}
	for v := 1; v <= 10; v++ { // folded again from the snapshots at 4 and 8
		st, err := decl.State(ctx, "grow", "g-1", eventstore.AtVersion(int64(v)), nil)
		if err != nil || string(st.State) != growState(v) {
			t.Fatalf("g-1 at version %d: %s, %v", v, st.State, err)
		}
	}
	// Version 11 folds 9..11 again from the snapshot at 8, 14 folds 13..14
	// from the one at 12: each fails at the first event over the limit.
	for _, c := range []struct{ version, at int64 }{{11, g1[10]}, {14, g1[12]}} {
		_, err := decl.State(ctx, "grow", "g-1", eventstore.AtVersion(c.version), nil)
		checkTooLarge(t, err, c.at)
	}
	// A state that is a snapshot itself is read as the instance that
	// accepted it saved it, with no fold: limits apply to folds.
	if st, err := decl.State(ctx, "grow", "g-1", eventstore.AtVersion(12), nil); err != nil || string(st.State) != growState(12) {
		t.Fatalf("g-1 at version 12: %s, %v", st.State, err)
	}
	if st, err := decl.State(ctx, "grow", "g-2", eventstore.Now(), nil); err != nil || string(st.State) != growState(3) {
		t.Fatalf("g-2: %s, %v", st.State, err)
	}
	if info, _ := decl.Projection("grow"); info.Versions[0].Fault != nil || info.Versions[0].Status != projections.StatusActive {
		t.Fatalf("a failed read faulted the projection: %+v", info.Versions[0])
	}
	// A live event of g-1 starts from its latest state, which folds again
	// and faults: the runner stops there; "count" and appends go on.
	res, err := store.Append(ctx, "g-1", eventstore.Any{}, eventstore.NewEvent{Type: "Grown", Data: json.RawMessage(`{"pad":""}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "grow faults", func() bool {
		info, _ := decl.Projection("grow")
		return info.Versions[0].Fault != nil
	})
	info, _ := decl.Projection("grow")
	if f := info.Versions[0].Fault; f.Position != res.LastPosition || f.Kind != projections.FaultRuntimeError ||
		!strings.Contains(f.Message, fmt.Sprintf("faulted at position %d", g1[12])) || info.Versions[0].Checkpoint != res.LastPosition-1 {
		t.Fatalf("fault %+v checkpoint %d; want one at %d that names the 13th event at %d", f, info.Versions[0].Checkpoint, res.LastPosition, g1[12])
	}
	waitFor(t, "count at the head", func() bool {
		info, _ := decl.Projection("count")
		return info.Versions[0].Checkpoint == res.LastPosition
	})
	if st, err := decl.State(ctx, "count", "g-1", eventstore.Now(), nil); err != nil || string(st.State) != `{"n":15}` {
		t.Fatalf("count: %s, %v", st.State, err)
	}
}

// TestRefillFaultIsContained: the refill of an instance restarted with a
// lower state limit stops at the first event over it, after refilling
// exactly the states before it, and logs where; the other projection is
// refilled in full, and a read of the state it stopped at fails with the
// same fault.
func TestRefillFaultIsContained(t *testing.T) {
	store, _, _ := openStore(t)
	g1 := buildGrown(t, store)
	ctx := ctxT(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc := openService(t, store, projections.Options{SnapshotEvery: 4, MaxStateBytes: grownLimit, Logger: logger})
	decl := svc.Declarative()
	stopped := fmt.Sprintf(`msg="the refill of restored states stopped at a fault; reads of the states after it fold them when asked" projection=grow definitionVersion=1 position=%d stream=g-1 type=Grown kind=STATE_TOO_LARGE`, g1[10])
	waitFor(t, "the refill of grow stops", func() bool { return strings.Contains(logs.String(), stopped) })
	waitFor(t, "count refilled", func() bool {
		info, _ := decl.Projection("count")
		return info.Versions[0].RefilledStates == 17
	})
	info, _ := decl.Projection("grow")
	if v := info.Versions[0]; v.RefilledStates != 3+10 || v.Fault != nil || v.RestoredFrom < g1[13] {
		t.Fatalf("grow refilled %d states (want 13: g-2's 3, g-1's first 10): %+v", v.RefilledStates, v)
	}
	if st, err := decl.State(ctx, "grow", "g-1", eventstore.AtVersion(10), nil); err != nil || string(st.State) != growState(10) {
		t.Fatalf("g-1 at version 10: %s, %v", st.State, err)
	}
	_, err := decl.State(ctx, "grow", "g-1", eventstore.AtVersion(11), nil)
	checkTooLarge(t, err, g1[10])
}
