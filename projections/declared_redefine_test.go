package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// versionReducer counts events and stamps the definition's version into the
// state, so a reader can tell which version produced each partition.
func versionReducer(v int) string { return fmt.Sprintf(".state.n += 1 | .state.v = %d | .state", v) }

// TestRedefinitionUnderLoad replaces a projection while appends, list and
// state reads and a subscription run: no read fails, every answer comes from
// exactly one version (the version stamped in every state equals the
// answer's definitionVersion), a reader never goes back to the old version
// once it saw the new one, and the subscription delivers one change per
// matching event, in position order, across the switch.
func TestRedefinitionUnderLoad(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	decl := svc.Declarative()
	seed := 1500
	if testing.Short() {
		seed = 500
	}
	for i := 0; i < seed/100; i++ {
		batch := make([]eventstore.NewEvent, 100)
		for j := range batch {
			batch[j] = eventstore.NewEvent{Type: "Tick", Data: json.RawMessage(`{}`)}
		}
		if _, err := store.Append(ctx, fmt.Sprintf("r-%d", i%5), eventstore.Any{}, batch...); err != nil {
			t.Fatal(err)
		}
	}
	define(t, svc, projections.Definition{Name: "ticks", StreamPrefix: "r-", Reducer: versionReducer(1)})
	sub, err := decl.Subscribe(ctx, "ticks", "", ptr(int64(0)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	type got struct{ pos, version int64 }
	var (
		subMu   sync.Mutex
		changes []got
	)
	subCtx, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	subDone := make(chan struct{})
	go func() { // the subscriber reads throughout, across the switch
		defer close(subDone)
		for {
			c, err := sub.Recv(subCtx)
			if err != nil {
				if subCtx.Err() == nil {
					t.Errorf("subscription: %v", err)
				}
				return
			}
			subMu.Lock()
			changes = append(changes, got{c.Position, c.DefinitionVersion})
			subMu.Unlock()
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var appended atomic.Int64
	wg.Add(1)
	go func() { // appends carry on throughout
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := store.Append(ctx, fmt.Sprintf("r-%d", i%7), eventstore.Any{},
				eventstore.NewEvent{Type: "Tick", Data: json.RawMessage(`{}`)}); err != nil {
				t.Error(err)
				return
			}
			appended.Add(1)
		}
	}()
	var reads, sawV2 atomic.Int64
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			newest := int64(1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				page, err := decl.Partitions(ctx, projections.ListPartitions{Name: "ticks", First: 100, Count: true})
				if err != nil {
					t.Errorf("list: %v", err)
					return
				}
				if page.DefinitionVersion < newest {
					t.Errorf("went back from version %d to %d", newest, page.DefinitionVersion)
					return
				}
				newest = page.DefinitionVersion
				if newest == 2 {
					sawV2.Add(1)
				}
				for _, p := range page.Partitions {
					var st struct{ N, V int64 }
					_ = json.Unmarshal(p.State, &st)
					if st.V != page.DefinitionVersion || p.DefinitionVersion != page.DefinitionVersion {
						t.Errorf("a page of version %d holds %s from version %d", page.DefinitionVersion, p.State, p.DefinitionVersion)
						return
					}
				}
				one, err := decl.State(ctx, "ticks", "r-1", eventstore.Now(), nil)
				if err != nil {
					t.Errorf("state: %v", err)
					return
				}
				if one.DefinitionVersion < newest {
					t.Errorf("state went back from version %d to %d", newest, one.DefinitionVersion)
					return
				}
				reads.Add(1)
			}
		}()
	}
	waitFor(t, "reads and appends under way", func() bool { return reads.Load() > 20 && appended.Load() > 20 })
	v2, _, err := decl.Define(ctx, projections.Definition{Name: "ticks", StreamPrefix: "r-", Reducer: versionReducer(2)}, eventstore.Exact(1))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 {
		t.Fatalf("defined version %d", v2.Version)
	}
	waitActive(t, svc, "ticks", 2)
	waitFor(t, "reads of version 2", func() bool { return sawV2.Load() > 10 })
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	// The new version's states are right: n = the partition's events.
	head := store.HeadPosition()
	page, err := decl.Partitions(ctx, projections.ListPartitions{Name: "ticks", At: eventstore.AtPosition(head), First: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range page.Partitions {
		h, err := store.Head(ctx, p.Key)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"n":%d,"v":2}`, h.Version); string(p.State) != want || p.Version != h.Version {
			t.Fatalf("%s: %s at version %d, want %s", p.Key, p.State, p.Version, want)
		}
	}
	// The subscription: one change per matching event up to the head, in
	// order, from version 1 and then from version 2.
	var want []int64
	for _, ev := range readLog(t, store) {
		if len(ev.StreamID) > 2 && ev.StreamID[:2] == "r-" && ev.Position <= head {
			want = append(want, ev.Position)
		}
	}
	waitFor(t, "the subscription at the head", func() bool {
		subMu.Lock()
		defer subMu.Unlock()
		return len(changes) >= len(want)
	})
	cancelSub()
	<-subDone
	versions := map[int64]bool{}
	for i, pos := range want {
		if changes[i].pos != pos {
			t.Fatalf("change %d at position %d, want %d", i, changes[i].pos, pos)
		}
		if i > 0 && changes[i].version < changes[i-1].version {
			t.Fatalf("change %d from version %d after one from version %d", i, changes[i].version, changes[i-1].version)
		}
		versions[changes[i].version] = true
	}
	if !versions[1] || !versions[2] {
		t.Fatalf("the subscription saw versions %v; want 1 then 2", versions)
	}
	if info, _ := decl.Projection("ticks"); info.Versions[0].Status != projections.StatusReplaced || info.Versions[1].Status != projections.StatusActive {
		t.Fatalf("versions: %+v", info.Versions)
	}
}

// TestDeclaredAcrossInstances: a projection defined on one instance is
// built by another from the log, and a read there at the position of a
// write taken by the first sees it (read your writes across instances).
func TestDeclaredAcrossInstances(t *testing.T) {
	storeA, client, db := openStore(t)
	storeB := openStoreOn(t, client, db)
	a := openService(t, storeA, projections.Options{})
	b := openService(t, storeB, projections.Options{})
	ctx := ctxT(t)
	if _, err := storeA.Append(ctx, "x-1", eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	define(t, a, projections.Definition{Name: "xs", StreamPrefix: "x-", Reducer: `.state.sum += .event.data.n | .state`})
	waitActive(t, b, "xs", 1)
	res, err := storeA.Append(ctx, "x-1", eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{"n":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Declarative().State(ctx, "xs", "x-1", eventstore.AtPosition(res.LastPosition), nil)
	if err != nil || string(st.State) != `{"sum":7}` || st.Version != 2 {
		t.Fatalf("instance B at position %d: %s version %d, %v", res.LastPosition, st.State, st.Version, err)
	}
}
