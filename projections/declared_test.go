package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// cartReducer sums line values of ItemAdded minus ItemRemoved and counts the
// events, per partition.
const cartReducer = `. as {state: $s, event: $e}
  | $s
  | .total += ($e.data.qty * $e.data.price * (if $e.type == "ItemAdded" then 1 else -1 end))
  | .events += 1`

// define records a definition and waits until it answers.
func define(t testing.TB, svc *projections.Service, def projections.Definition) (projections.DefinitionVersion, projections.DryRun) {
	t.Helper()
	v, dry, err := svc.Declarative().Define(ctxT(t), def, nil)
	if err != nil {
		t.Fatalf("define %s: %v", def.Name, err)
	}
	waitActive(t, svc, def.Name, v.Version)
	return v, dry
}

func waitActive(t testing.TB, svc *projections.Service, name string, version int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s version %d active", name, version), func() bool {
		info, ok := svc.Declarative().Projection(name)
		return ok && info.ActiveVersion == version
	})
}

// genEvent is one generated event: carts get lines added and removed; the
// first event of a cart names its customer, later ones do not (they follow
// the stream's partition); other streams are noise.
type genEvent struct {
	stream, typ string
	data        map[string]any
}

func generateHistory(rng *rand.Rand, n int) [][]genEvent {
	var appends [][]genEvent
	named := map[string]bool{}
	for count := 0; count < n; {
		k := 1 + rng.Intn(3)
		var batch []genEvent
		stream := fmt.Sprintf("cart-%d", rng.Intn(25))
		if rng.Intn(5) == 0 {
			stream = fmt.Sprintf("noise-%d", rng.Intn(3))
		}
		for i := 0; i < k; i++ {
			typ := "ItemAdded"
			if rng.Intn(3) == 0 {
				typ = "ItemRemoved"
			}
			if rng.Intn(7) == 0 {
				typ = "CartViewed"
			}
			data := map[string]any{"sku": fmt.Sprintf("s%d", rng.Intn(5)), "qty": 1 + rng.Intn(4), "price": 10 * (1 + rng.Intn(9))}
			if !named[stream] {
				named[stream] = true
				data["customer"] = fmt.Sprintf("c%d", rng.Intn(6))
			} else if rng.Intn(10) == 0 {
				data["customer"] = fmt.Sprintf("c%d", rng.Intn(6)) // a stream may move to another customer
			}
			batch = append(batch, genEvent{stream: stream, typ: typ, data: data})
		}
		appends = append(appends, batch)
		count += k
	}
	return appends
}

// refFold is the reference: the same projections written in Go, folded over
// the log as read back from the store (positions and times are the store's).
type cartRef struct { // fields in the order encoding/json gives a jq object's keys
	Events float64 `json:"events"`
	Total  float64 `json:"total"`
}

type refPartition struct {
	states []cartRef
	from   []int64 // position of each state
}

func (p *refPartition) at(pos int64) (cartRef, int, bool) {
	i := sort.Search(len(p.from), func(i int) bool { return p.from[i] > pos })
	if i == 0 {
		return cartRef{}, 0, false
	}
	return p.states[i-1], i, true
}

func refFold(log []eventstore.Event, byCustomer bool) (map[string]*refPartition, []string) {
	parts := map[string]*refPartition{}
	var order []string
	sticky := map[string]string{}
	for _, ev := range log {
		if len(ev.StreamID) < 5 || ev.StreamID[:5] != "cart-" || (ev.Type != "ItemAdded" && ev.Type != "ItemRemoved") {
			continue
		}
		var d struct {
			Qty, Price float64
			Customer   *string
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			panic(err)
		}
		key := ev.StreamID
		if byCustomer {
			if d.Customer != nil {
				sticky[ev.StreamID] = *d.Customer
			}
			key = sticky[ev.StreamID]
			if key == "" {
				continue
			}
		}
		p := parts[key]
		if p == nil {
			p = &refPartition{}
			parts[key] = p
			order = append(order, key)
		}
		var prev cartRef
		if n := len(p.states); n > 0 {
			prev = p.states[n-1]
		}
		sign := 1.0
		if ev.Type == "ItemRemoved" {
			sign = -1
		}
		next := cartRef{Total: prev.Total + sign*d.Qty*d.Price, Events: prev.Events + 1}
		p.states = append(p.states, next)
		p.from = append(p.from, ev.Position)
	}
	return parts, order
}

func readLog(t testing.TB, store *eventstore.Store) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	after := int64(0)
	for {
		page, err := store.ReadAll(ctxT(t), eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Position
	}
}

func appendHistory(t testing.TB, store *eventstore.Store, appends [][]genEvent) {
	t.Helper()
	for _, batch := range appends {
		events := make([]eventstore.NewEvent, len(batch))
		for i, g := range batch {
			b, _ := json.Marshal(g.data)
			events[i] = eventstore.NewEvent{Type: g.typ, Data: b}
		}
		if _, err := store.Append(ctxT(t), batch[0].stream, eventstore.Any{}, events...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeclaredMatchesReferenceFold checks both kinds of partitioning against
// the reference fold at every position of a generated history, at many
// times, and at every version of every partition; half the history is
// written before the projections are defined and half after, so both the
// build and the live path are covered.
func TestDeclaredMatchesReferenceFold(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	rng := rand.New(rand.NewSource(19))
	n := 400
	if testing.Short() {
		n = 150
	}
	history := generateHistory(rng, n)
	appendHistory(t, store, history[:len(history)/2])
	define(t, svc, projections.Definition{Name: "carts", StreamPrefix: "cart-",
		EventTypes: []string{"ItemAdded", "ItemRemoved"}, InitialState: json.RawMessage(`{"total":0,"events":0}`), Reducer: cartReducer})
	define(t, svc, projections.Definition{Name: "customers", StreamPrefix: "cart-", PartitionBy: ".data.customer",
		EventTypes: []string{"ItemAdded", "ItemRemoved"}, Reducer: cartReducer})
	appendHistory(t, store, history[len(history)/2:])

	log := readLog(t, store)
	for _, tc := range cartProjections {
		t.Run(tc.name, func(t *testing.T) {
			checkReference(t, svc, store, log, rng, tc.name, tc.byCustomer)
		})
	}
}

// cartProjections are the two projections of cartReducer the reference
// tests define: keyed by stream and by the customer (jq).
var cartProjections = []struct {
	name       string
	byCustomer bool
}{{"carts", false}, {"customers", true}}

// checkReference checks a projection of cartReducer against the reference
// fold of log: its partitions at every few positions and at random times,
// every version of every partition, and paging.
func checkReference(t *testing.T, svc *projections.Service, store *eventstore.Store, log []eventstore.Event, rng *rand.Rand, name string, byCustomer bool) {
	head := log[len(log)-1].Position
	ref, order := refFold(log, byCustomer)
	decl := svc.Declarative()
	ctx := ctxT(t)
	checkAt := func(at eventstore.At, pos int64) {
		t.Helper()
		var want []string
		for _, k := range order {
			if s, v, ok := ref[k].at(pos); ok {
				want = append(want, fmt.Sprintf("%s v%d %s", k, v, mustJSON(t, s)))
			}
		}
		page, err := decl.Partitions(ctx, projections.ListPartitions{Name: name, At: at, First: 1000, Count: true})
		if err != nil {
			t.Fatalf("partitions at %d: %v", pos, err)
		}
		var got []string
		for _, p := range page.Partitions {
			got = append(got, fmt.Sprintf("%s v%d %s", p.Key, p.Version, p.State))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || page.TotalCount != len(want) {
			t.Fatalf("at position %d:\n got %v (total %d)\nwant %v", pos, got, page.TotalCount, want)
		}
		n, err := decl.Count(ctx, name, at, "", nil)
		if err != nil || n != len(want) {
			t.Fatalf("count at %d = %d, %v; want %d", pos, n, err, len(want))
		}
	}
	for pos := int64(0); pos <= head; pos += 1 + pos%3 {
		checkAt(eventstore.AtPosition(pos), pos)
	}
	for i := 0; i < 40; i++ {
		ev := log[rng.Intn(len(log))]
		// A time between two events' recordedAt includes the earlier.
		tm := ev.RecordedAt.Add(time.Duration(rng.Intn(1000)) * time.Nanosecond)
		checkAt(eventstore.AtTime(tm), store.PositionAt(tm))
	}
	checkAt(eventstore.Now(), head)
	for _, k := range order {
		p := ref[k]
		for v := 1; v <= len(p.states); v++ {
			got, err := decl.State(ctx, name, k, eventstore.AtVersion(int64(v)), nil)
			if err != nil || got.Version != int64(v) || got.Position != p.from[v-1] || string(got.State) != mustJSON(t, p.states[v-1]) {
				t.Fatalf("%s at version %d: %+v %s, %v; want %s at %d", k, v, got, got.State, err, mustJSON(t, p.states[v-1]), p.from[v-1])
			}
			pos := p.from[v-1]
			got, err = decl.State(ctx, name, k, eventstore.AtPosition(pos), nil)
			if err != nil || got.Version != int64(v) {
				t.Fatalf("%s at position %d: version %d, %v; want %d", k, pos, got.Version, err, v)
			}
		}
		if _, err := decl.State(ctx, name, k, eventstore.AtPosition(p.from[0]-1), nil); errKind(err) != "NOT_FOUND" {
			t.Fatalf("%s before its first event: %v, want NOT_FOUND", k, err)
		}
	}
	// Paging with cursors gives the same list as one page.
	var keys []string
	after := ""
	for {
		page, err := decl.Partitions(ctx, projections.ListPartitions{Name: name, First: 4, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Partitions {
			keys = append(keys, p.Key)
		}
		if !page.HasNext {
			break
		}
		after = page.EndCursor
	}
	if fmt.Sprint(keys) != fmt.Sprint(order) {
		t.Fatalf("paged keys %v, want %v", keys, order)
	}
}

// reducerFaults are the faulting reducers (and a bad partition key), each
// with the data of the event that makes it fail, under a ReducerTimeout of
// 50 ms and a MaxStateBytes of 1000.
var reducerFaults = []struct {
	name, reducer, partitionBy string
	trigger                    string // the data of the event that makes it fail
	kind                       projections.FaultKind
	message                    string // what the fault says
}{
	{"timeout", `if .event.data.spin then (last(range(1e12))) as $x | .state else .state end`, "", `{"spin":true}`, projections.FaultTimeout, "took longer than the limit of 50ms"},
	{"too-large", `.state.blob = ([range(.event.data.grow // 0)] | map("xxxxxxxxxx") | join("")) | .state`, "", `{"grow":200}`, projections.FaultStateTooLarge, "the limit is 1000"},
	{"runtime", `.state.n += (.event.data.bad // 0 | if . == 1 then error("bad event") else . end) | .state`, "", `{"bad":1}`, projections.FaultRuntimeError, "bad event"},
	{"not-object", `if .event.data.list then [1] else .state end`, "", `{"list":true}`, projections.FaultNotAnObject, "the reducer gave an array, not an object"},
	{"no-value", `if .event.data.none then empty else .state end`, "", `{"none":true}`, projections.FaultRuntimeError, "the reducer gave no value"},
	{"two-values", `if .event.data.two then (.state, .state) else .state end`, "", `{"two":true}`, projections.FaultRuntimeError, "the reducer gave more than one value"},
	{"bad-key", `.state`, `.data.key // "k"`, `{"key":[1]}`, projections.FaultPartitionKey, "partitionBy gave an array"},
}

// TestDeclaredFaultsAreContained runs the four faulting reducers (and a bad
// partition key): each stops only its own projection at the failing
// position, is reported there, and leaves other projections and appends
// working.
func TestDeclaredFaultsAreContained(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{ReducerTimeout: 50 * time.Millisecond, MaxStateBytes: 1000})
	ctx := ctxT(t)
	decl := svc.Declarative()
	// The dry run sees only harmless events, so every definition is accepted.
	mustAppend := func(stream, typ, data string) int64 {
		t.Helper()
		res, err := store.Append(ctx, stream, eventstore.Any{}, eventstore.NewEvent{Type: typ, Data: json.RawMessage(data)})
		if err != nil {
			t.Fatal(err)
		}
		return res.LastPosition
	}
	mustAppend("f-1", "Ok", `{"n":1}`)
	cases := reducerFaults
	for _, c := range cases {
		define(t, svc, projections.Definition{Name: c.name, StreamPrefix: "f-", PartitionBy: c.partitionBy, Reducer: c.reducer})
	}
	healthy, _ := define(t, svc, projections.Definition{Name: "healthy", StreamPrefix: "f-", Reducer: `.state.n += 1 | .state`})
	var at []int64
	for _, c := range cases {
		at = append(at, mustAppend("f-1", "Trigger", c.trigger))
	}
	last := mustAppend("f-2", "After", `{}`) // appends carry on
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			waitFor(t, "fault", func() bool {
				info, _ := decl.Projection(c.name)
				return info.Versions[0].Fault != nil
			})
			info, _ := decl.Projection(c.name)
			v := info.Versions[0]
			f := v.Fault
			if v.Status != projections.StatusFaulted || f.Kind != c.kind || f.Position != at[i] || f.StreamID != "f-1" ||
				f.EventType != "Trigger" || v.Checkpoint != at[i]-1 || !strings.Contains(f.Message, c.message) {
				t.Fatalf("status %s checkpoint %d fault %+v; want %s at %d saying %q", v.Status, v.Checkpoint, f, c.kind, at[i], c.message)
			}
			// Before the fault it answers; at or after it, and now, it reports the fault.
			if _, err := decl.State(ctx, c.name, "f-1", eventstore.AtPosition(at[i]-1), nil); err != nil && c.partitionBy == "" {
				t.Fatalf("state before the fault: %v", err)
			}
			for _, point := range []eventstore.At{eventstore.AtPosition(at[i]), eventstore.Now()} {
				_, err := decl.Partitions(ctx, projections.ListPartitions{Name: c.name, At: point, First: 10})
				var fe *projections.FaultError
				if !errors.As(err, &fe) || !errors.Is(err, projections.ErrProjectionFaulted) || fe.Fault.Position != at[i] {
					t.Fatalf("query at %v: %v; want the fault at %d", point, err, at[i])
				}
			}
		})
	}
	got, err := decl.State(ctx, "healthy", "f-1", eventstore.AtPosition(last), nil)
	if err != nil || string(got.State) != fmt.Sprintf(`{"n":%d}`, 1+len(cases)) {
		t.Fatalf("the healthy projection: %s, %v", got.State, err)
	}
	if info, _ := decl.Projection("healthy"); info.Versions[0].Status != projections.StatusActive || info.ActiveVersion != healthy.Version {
		t.Fatalf("healthy: %+v", info)
	}
}

// TestDeclaredMemoryBudget: the version whose states would pass the budget
// faults with MEMORY_BUDGET, and a version that is replaced gives its memory
// back once it is retired.
func TestDeclaredMemoryBudget(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{ProjectionMemoryBudget: 3000, LagWait: 100 * time.Millisecond})
	ctx := ctxT(t)
	decl := svc.Declarative()
	define(t, svc, projections.Definition{Name: "small", StreamPrefix: "m-", Reducer: `.state.n += 1 | .state`})
	var last int64
	for i := 0; i < 20; i++ { // 20 states of {"n":k}: 20 × (7 or 8 + 64) bytes
		res, err := store.Append(ctx, fmt.Sprintf("m-%d", i), eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastPosition
	}
	waitFor(t, "small at the head", func() bool {
		info, _ := decl.Projection("small")
		return info.Versions[0].Checkpoint == last
	})
	used, _ := decl.Memory()
	if used != 20*(7+64) {
		t.Fatalf("used %d bytes, want %d", used, 20*(7+64))
	}
	// A second version with bigger states, built while the first answers: over the budget.
	v2, _, err := decl.Define(ctx, projections.Definition{Name: "small", StreamPrefix: "m-",
		Reducer: `.state.m = "` + strings.Repeat("x", 50) + `" | .state`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "version 2 faults", func() bool {
		info, _ := decl.Projection("small")
		return info.Versions[1].Fault != nil
	})
	info, _ := decl.Projection("small")
	if f := info.Versions[1].Fault; f.Kind != projections.FaultMemoryBudget || info.ActiveVersion != 1 || v2.Version != 2 {
		t.Fatalf("version 2: %+v; active %d", f, info.ActiveVersion)
	}
	// Version 1 still answers.
	if st, err := decl.State(ctx, "small", "m-3", eventstore.Now(), nil); err != nil || string(st.State) != `{"n":1}` {
		t.Fatalf("version 1: %s, %v", st.State, err)
	}
	// A third version that fits beside the first replaces both; the memory
	// of the old ones is given back.
	define(t, svc, projections.Definition{Name: "small", StreamPrefix: "m-", PartitionBy: `"all"`, Reducer: `.state.n += 1 | .state`})
	waitFor(t, "the replaced versions' memory given back", func() bool {
		used, _ := decl.Memory()
		return used == 20*64+7*9+8*11 // one partition: {"n":1}..{"n":9} and {"n":10}..{"n":20}
	})
}
