package e2e

// The scenarios of issue 6, each against real hindsight processes on
// loopback ports: the quick start, three instances on one store, a crash, a
// store outage, a battery of bad input, and a graceful shutdown under load.
// Each one counts what it wrote and what its subscribers received, and
// every broken guarantee as an anomaly, for the table TestMain prints.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Traffic.

// target names the server a writer sends its next request to.
type target func() *server

func fixed(s *server) target { return func() *server { return s } }

// appendWriter appends 1..maxEvents events with fresh ids (each with pad
// bytes of data) to its streams in turn, through to(), until ctx ends or
// after n appends (n > 0), pausing between appends. A request already sent
// is never cancelled by ctx. After a failed request it waits a little, so
// that a server that is down is not hammered.
type appendWriter struct {
	name      string
	to        target
	streams   []string
	maxEvents int
	n         int
	pause     time.Duration
	pad       int
}

// startWriters starts two writers per server, each appending up to
// maxEvents events per append, pausing between appends, to a stream of its
// own ("<prefix>-w<i><server>") and one it shares with the other servers'
// writers ("<prefix>-shared-<i>").
func startWriters(ctx context.Context, wg *sync.WaitGroup, l *ledger, st *scenarioStats, srv []*server, prefix string, maxEvents int, pause time.Duration) {
	for i := 0; i < 2; i++ {
		for _, s := range srv {
			name := fmt.Sprintf("w%d%s", i, s.name)
			streams := []string{prefix + "-" + name, fmt.Sprintf("%s-shared-%d", prefix, i)}
			wg.Go(func() { appendWriter{name, fixed(s), streams, maxEvents, 0, pause, 0}.run(ctx, l, st) })
		}
	}
}

func (w appendWriter) run(ctx context.Context, l *ledger, st *scenarioStats) {
	for i := 0; w.n == 0 || i < w.n; i++ {
		if ctx.Err() != nil {
			return
		}
		s := w.to()
		k := 1 + i%w.maxEvents
		stream := w.streams[i%len(w.streams)]
		ids, evs := newAppend(w.name, stream, k, w.pad)
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		o := appendEvents(rctx, s.base, s.name, w.name, stream, ids, evs)
		cancel()
		l.add(o)
		if o.Acked {
			st.written.Add(int64(k))
			sleepCtx(ctx, w.pause)
		} else {
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
}

// orderWriter runs order lifecycles (create, two items, place, pay) through
// target() until ctx ends or after n orders (n > 0). A failed command
// abandons its order. It returns the failures it saw.
func orderWriter(ctx context.Context, l *ledger, st *scenarioStats, name string, to target, n int) (failures []string) {
	for i := 0; n == 0 || i < n; i++ {
		if ctx.Err() != nil {
			return failures
		}
		var id string
		total := 0
		steps := []struct {
			m    string
			vars func() map[string]any
		}{
			{createOrderM, func() map[string]any { return map[string]any{"c": name} }},
			{addItemM, func() map[string]any { total += 2 * 250; return map[string]any{"id": id, "sku": "a", "q": 2, "p": 250} }},
			{addItemM, func() map[string]any { total += 1 * 999; return map[string]any{"id": id, "sku": "b", "q": 1, "p": 999} }},
			{placeM, func() map[string]any { return map[string]any{"id": id} }},
			{payM, func() map[string]any { return map[string]any{"id": id, "a": total} }},
		}
		for _, step := range steps {
			s := to()
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			o, r, err := orderCmd(rctx, s.base, step.m, step.vars())
			cancel()
			if err != nil || o == nil {
				f := fmt.Sprintf("%s via %s: %s: %v", name, s.name, firstLine(step.m), err)
				if r != nil {
					f = fmt.Sprintf("%s via %s: %s: %s", name, s.name, firstLine(step.m), r)
				}
				failures = append(failures, f)
				sleepCtx(ctx, 100*time.Millisecond)
				break
			}
			id = o.ID
			l.addOrder(o)
			st.written.Add(1)
		}
	}
	return failures
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// streamInfo is what a server answers about one stream.
type streamInfo struct {
	Version int
	State   json.RawMessage
	Verify  struct {
		Ok                 bool
		CheckedEvents      int
		FirstBrokenVersion *int
		Reason             *string
	}
}

// streamsOn asks a server about the given streams (version and state, and
// with verify the hash chain verification), in a few aliased queries (one
// query per stream with verify).
func streamsOn(t *testing.T, base string, ids []string, verify bool) map[string]*streamInfo {
	t.Helper()
	fields := "version state"
	if verify {
		fields += " verify { ok checkedEvents firstBrokenVersion reason }"
	}
	// verify costs over half the complexity limit: one per operation.
	per := 25
	if verify {
		per = 1
	}
	out := map[string]*streamInfo{}
	for len(ids) > 0 {
		n := min(len(ids), per)
		var q strings.Builder
		q.WriteString("{")
		for i, id := range ids[:n] {
			fmt.Fprintf(&q, " s%d: stream(id: %q) { %s }", i, id, fields)
		}
		q.WriteString(" }")
		var d map[string]*streamInfo
		mustRetryUnavailable(t, base, q.String(), &d)
		for i, id := range ids[:n] {
			out[id] = d[fmt.Sprintf("s%d", i)]
		}
		ids = ids[n:]
	}
	return out
}

// mustRetryUnavailable runs a query like must, but retries it while it
// fails with STORE_UNAVAILABLE, as clients are told to (the store answered
// too slowly, which on a loaded machine is no fault), up to 10 times.
func mustRetryUnavailable(t *testing.T, base, query string, out any) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		r, err := post(ctx, base, query, nil)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("%s: %v", firstLine(query), err)
		case r.code() == "STORE_UNAVAILABLE" && attempt < 10:
			t.Logf("%s: STORE_UNAVAILABLE (attempt %d); retrying", firstLine(query), attempt)
			time.Sleep(time.Duration(attempt) * time.Second)
			continue
		case !r.ok():
			t.Fatalf("%s: %s", firstLine(query), r)
		}
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("%s: decode %s: %v", firstLine(query), r.Data, err)
		}
		return
	}
}

// checkStreams holds every stream of the log on each server: present, at the
// log's version, and with the same state on every server. On the first
// server, the hash chains of up to maxVerify streams (0 = all; generic
// streams before order streams) must verify over every event. Verifying
// reads a stream from the store, a scan on FerretDB, hence the limit.
func checkStreams(t *testing.T, st *scenarioStats, log []logEvent, maxVerify int, servers ...*server) {
	t.Helper()
	versions := streamVersions(log)
	ids := sortedKeys(versions)
	toVerify := slices.Clone(ids)
	sort.SliceStable(toVerify, func(i, j int) bool {
		return !strings.HasPrefix(toVerify[i], "order-") && strings.HasPrefix(toVerify[j], "order-")
	})
	if maxVerify > 0 && len(toVerify) > maxVerify {
		toVerify = toVerify[:maxVerify]
	}
	verified := streamsOn(t, servers[0].base, toVerify, true)
	for _, id := range toVerify {
		if v := verified[id]; v != nil && (!v.Verify.Ok || v.Verify.CheckedEvents != versions[id]) {
			st.anomaly(t, "%s: stream %s hash chain: %+v, want ok over %d events", servers[0].name, id, v.Verify, versions[id])
		}
	}
	var first map[string]*streamInfo
	for _, s := range servers {
		got := streamsOn(t, s.base, ids, false)
		for _, id := range ids {
			info := got[id]
			switch {
			case info == nil:
				st.anomaly(t, "%s: stream %s is null, the log has it at version %d", s.name, id, versions[id])
				continue
			case info.Version != versions[id]:
				st.anomaly(t, "%s: stream %s at version %d, the log has %d", s.name, id, info.Version, versions[id])
			}
			if first != nil && first[id] != nil && !jsonEqual(first[id].State, info.State) {
				st.anomaly(t, "%s: stream %s state %s, %s has %s", s.name, id, info.State, servers[0].name, first[id].State)
			}
		}
		if first == nil {
			first = got
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// settleAll waits until every server and subscriber has reached the highest
// position acknowledged to a writer or applied by a server, and returns it.
func settleAll(t *testing.T, l *ledger, servers []*server, subs []*subscriber) int64 {
	t.Helper()
	head := l.maxPosition()
	for _, s := range servers {
		head = max(head, headPosition(t, s.base))
	}
	settle(t, head, servers, subs)
	return head
}

// settle waits until every server has applied head and every subscriber
// has received it.
func settle(t *testing.T, head int64, servers []*server, subs []*subscriber) {
	t.Helper()
	waitHeads(t, head, 60*time.Second, servers...)
	for _, s := range subs {
		if !s.waitFor(head, 60*time.Second) {
			got, ends := s.snapshot()
			last := "none"
			if len(got) > 0 {
				last = got[len(got)-1].Position
			}
			t.Errorf("subscriber %s did not reach position %d in 60s: last %s, connection ends %v", s.name, head, last, ends)
		}
	}
}

// ---------------------------------------------------------------------------
// 1. Quick start.

// TestScenarioQuickStart runs the README's quick start: the binary with no
// settings in an empty directory (so ./data is fresh, and the address is the
// default 127.0.0.1:8080 unless another process holds it). GraphiQL answers
// at /, and an order goes through its lifecycle over HTTP; after each step,
// order(at: {position}) at every earlier step's position is that step's
// order, and a subscriber from position 0 gets every event.
func TestScenarioQuickStart(t *testing.T) {
	st := newScenario("1 quick start")
	dir := t.TempDir()
	addr, env := "127.0.0.1:8080", []string(nil)
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
	} else {
		addr = freeAddr(t)
		env = []string{"HINDSIGHT_ADDR=" + addr}
		t.Logf("127.0.0.1:8080 is taken on this machine; using %s", addr)
	}
	base := "http://" + addr
	p := start(t, dir, env)
	waitReady(t, p, base)
	select {
	case <-p.done:
		t.Fatalf("the server exited: %v\n%s", p.err, p.stderr.String())
	default:
	}

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(strings.ToLower(string(page)), "graphiql") {
		t.Fatalf("GET /: %d %q, %d bytes; want the GraphiQL page", resp.StatusCode, resp.Header.Get("Content-Type"), len(page))
	}

	sub := startSubscriber(t, st, "sse@quickstart", protoSSE, base, false)

	// The steps, and the order the test expects after each.
	type step struct {
		name string
		m    string
		vars map[string]any
		want func(o order) order
	}
	item := func(sku string, q, p int) orderItem { return orderItem{Sku: sku, Quantity: q, UnitPriceCents: p} }
	steps := []step{
		{"createOrder", createOrderM, map[string]any{"c": "customer-1"}, func(o order) order {
			return order{Status: "DRAFT", CustomerID: "customer-1", Items: []orderItem{}}
		}},
		{"addOrderItem apple", addItemM, map[string]any{"sku": "apple", "q": 2, "p": 150}, func(o order) order {
			o.Items = []orderItem{item("apple", 2, 150)}
			o.TotalCents = 300
			return o
		}},
		{"addOrderItem pear", addItemM, map[string]any{"sku": "pear", "q": 1, "p": 99}, func(o order) order {
			o.Items = []orderItem{item("apple", 2, 150), item("pear", 1, 99)}
			o.TotalCents = 399
			return o
		}},
		{"addOrderItem apple again", addItemM, map[string]any{"sku": "apple", "q": 1, "p": 150}, func(o order) order {
			o.Items = []orderItem{item("apple", 3, 150), item("pear", 1, 99)}
			o.TotalCents = 549
			return o
		}},
		{"placeOrder", placeM, map[string]any{}, func(o order) order { o.Status = "PLACED"; return o }},
		{"payOrder", payM, map[string]any{"a": 549}, func(o order) order { o.Status = "PAID"; return o }},
		{"shipOrder", shipM, map[string]any{"t": "TRACK-1"}, func(o order) order {
			o.Status = "SHIPPED"
			tn := "TRACK-1"
			o.TrackingNumber = &tn
			return o
		}},
	}

	// comparable drops what the test cannot predict (ids, times) and sorts
	// the items.
	comparableOrder := func(o order) order {
		items := append([]orderItem{}, o.Items...)
		sort.Slice(items, func(i, j int) bool { return items[i].Sku < items[j].Sku })
		return order{Status: o.Status, CustomerID: o.CustomerID, Items: items, TotalCents: o.TotalCents,
			TrackingNumber: o.TrackingNumber, Version: o.Version}
	}
	var (
		id       string
		expected []order // after each step
		got      []order
		model    order
	)
	for i, s := range steps {
		if i > 0 {
			s.vars["id"] = id
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		o, r, err := orderCmd(ctx, base, s.m, s.vars)
		cancel()
		if err != nil || o == nil {
			t.Fatalf("step %d %s: %v %v", i+1, s.name, r, err)
		}
		st.written.Add(1)
		id = o.ID
		model = s.want(model)
		model.Version = i + 1
		expected = append(expected, model)
		got = append(got, *o)
		if c := comparableOrder(*o); !reflect.DeepEqual(c, model) {
			st.anomaly(t, "step %d %s returned %+v, want %+v", i+1, s.name, c, model)
		}
		if o.Position != strconv.Itoa(i+1) {
			st.anomaly(t, "step %d %s at position %s, want %d (the store was empty)", i+1, s.name, o.Position, i+1)
		}

		// Time travel to every step so far, and to before the order existed.
		var q strings.Builder
		q.WriteString(`query($id: ID!) { before: order(id: $id, at: {position: "0"}) { id } now: order(id: $id) { ` + orderFields + ` }`)
		for j := 0; j <= i; j++ {
			fmt.Fprintf(&q, " s%d: order(id: $id, at: {position: %q}) { %s }", j, got[j].Position, orderFields)
		}
		q.WriteString(" }")
		var d map[string]*order
		must(t, base, q.String(), map[string]any{"id": id}, &d)
		if d["before"] != nil {
			st.anomaly(t, "after step %d: the order exists at position 0: %+v", i+1, d["before"])
		}
		if d["now"] == nil || !reflect.DeepEqual(comparableOrder(*d["now"]), model) {
			st.anomaly(t, "after step %d: order(id) is %+v, want %+v", i+1, d["now"], model)
		}
		for j := 0; j <= i; j++ {
			at := d[fmt.Sprintf("s%d", j)]
			if at == nil {
				st.anomaly(t, "after step %d: order at position %s (step %d) is null", i+1, got[j].Position, j+1)
				continue
			}
			if c := comparableOrder(*at); !reflect.DeepEqual(c, expected[j]) || at.Position != got[j].Position {
				st.anomaly(t, "after step %d: order at position %s is %+v (position %s), want step %d's %+v",
					i+1, got[j].Position, c, at.Position, j+1, expected[j])
			}
		}
	}
	// The times each step set are those of its event.
	final := got[len(got)-1]
	if final.PlacedAt == nil || final.PaidAt == nil || final.ShippedAt == nil ||
		*final.PlacedAt > *final.PaidAt || *final.PaidAt > *final.ShippedAt {
		st.anomaly(t, "the shipped order's times are not set in order: placed %v paid %v shipped %v", final.PlacedAt, final.PaidAt, final.ShippedAt)
	}
	// Lists and statistics as of the steps.
	var stats struct {
		Placed, Paid struct {
			RevenueCents  int
			CountByStatus []struct {
				Status string
				Count  int
			}
		}
		PaidList struct{ TotalCount int }
	}
	must(t, base, `query($pl: Position, $pa: Position) {
		placed: orderStats(at: {position: $pl}) { revenueCents countByStatus { status count } }
		paid: orderStats(at: {position: $pa}) { revenueCents countByStatus { status count } }
		paidList: orders(status: PAID, at: {position: $pa}) { totalCount } }`,
		map[string]any{"pl": got[4].Position, "pa": got[5].Position}, &stats)
	if stats.Placed.RevenueCents != 0 || stats.Paid.RevenueCents != 549 || stats.PaidList.TotalCount != 1 {
		st.anomaly(t, "statistics as of placing and paying: %+v", stats)
	}

	log := readLog(t, base)
	checkLog(t, st, "quick start", log)
	if len(log) != len(steps) {
		st.anomaly(t, "the log has %d events after %d commands", len(log), len(steps))
	}
	settle(t, int64(len(log)), nil, []*subscriber{sub})
	sub.checkAgainst(t, log)
	p.stop(30 * time.Second)
}

// ---------------------------------------------------------------------------
// 2. Three instances on one store.

// TestScenarioThreeInstances runs devdb and three servers A, B and C on it.
// Writers on A and B append concurrently (generic appends and order
// lifecycles) for a few seconds, and none fails or stalls. Subscribers on C,
// one per transport and a late one that joins mid-traffic, follow the log
// from position 0: each receives exactly the log, in order. Sixteen
// concurrent addOrderItem calls on one order through A and B, without
// expected versions, all land.
func TestScenarioThreeInstances(t *testing.T) {
	st := newScenario("2 three instances")
	dir := t.TempDir()
	db := startDevdb(t, dir)
	srv := startServers(t, dir, db.env(), "A", "B", "C")
	a, b, c := srv[0], srv[1], srv[2]

	subs := []*subscriber{
		startSubscriber(t, st, "transport-ws@C", protoTransportWS, c.base, false),
		startSubscriber(t, st, "graphql-ws@C", protoGraphQLWS, c.base, false),
		startSubscriber(t, st, "sse@C", protoSSE, c.base, false),
	}

	// Sustained traffic for a few seconds: appends paced at about 25/s per
	// writer, three writers and one order writer per instance.
	var l ledger
	var wg sync.WaitGroup
	var orderFailures sync.Map
	ctx, stopWriters := context.WithTimeout(context.Background(), 8*time.Second)
	defer stopWriters()
	for i := 0; i < 3; i++ {
		for _, s := range []*server{a, b} {
			name := fmt.Sprintf("w%d%s", i, s.name)
			streams := []string{"multi-" + name + "-0", "multi-" + name + "-1", fmt.Sprintf("multi-shared-%d", i)}
			wg.Go(func() { appendWriter{name, fixed(s), streams, 3, 0, 40 * time.Millisecond, 0}.run(ctx, &l, st) })
		}
	}
	for _, s := range []*server{a, b} {
		wg.Go(func() {
			if f := orderWriter(ctx, &l, st, "orders"+s.name, fixed(s), 0); len(f) > 0 {
				orderFailures.Store(s.name, f)
			}
		})
	}
	time.Sleep(2 * time.Second)
	// A late subscriber from position 0 hands over from catch-up to live
	// while the writers run.
	subs = append(subs, startSubscriber(t, st, "late transport-ws@C", protoTransportWS, c.base, false))

	// Sixteen concurrent addOrderItem on one order, alternating A and B.
	var shared order
	must(t, a.base, `mutation { r: createOrder(customerId: "shared") { `+orderFields+` } }`, nil, &struct{ R *order }{&shared})
	l.addOrder(&shared)
	st.written.Add(1)
	var itemsMu sync.Mutex
	ackedItems := map[int]bool{}
	for i := 0; i < 16; i++ {
		s := srv[i%2]
		wg.Go(func() {
			sku := fmt.Sprintf("sku-%02d", i)
			o, r, err := orderCmd(context.Background(), s.base, addItemM, map[string]any{"id": shared.ID, "sku": sku, "q": i + 1, "p": 100 + i})
			if err != nil || o == nil {
				st.anomaly(t, "addOrderItem %s via %s failed: %v %v", sku, s.name, r, err)
				return
			}
			l.addOrder(o)
			st.written.Add(1)
			itemsMu.Lock()
			ackedItems[i] = true
			itemsMu.Unlock()
			if !slices.ContainsFunc(o.Items, func(it orderItem) bool { return it.Sku == sku }) {
				st.anomaly(t, "addOrderItem %s via %s answered an order without it: %+v", sku, s.name, o.Items)
			}
		})
	}
	wg.Wait()

	orderFailures.Range(func(k, v any) bool {
		st.anomaly(t, "order commands failed via %v without any fault: %v", k, v)
		return true
	})
	for _, o := range l.all() {
		switch {
		case !o.Acked:
			st.anomaly(t, "append failed without any fault: %s", o)
		case o.Took > 5*time.Second:
			st.anomaly(t, "append took %v without any fault: %s", o.Took.Round(time.Millisecond), o)
		}
	}

	head := settleAll(t, &l, srv, subs)
	log := readLog(t, c.base)
	checkLog(t, st, "C", log)
	if int64(len(log)) != head {
		st.anomaly(t, "the log on C has %d events, the head is %d", len(log), head)
	}
	for _, s := range []*server{a, b} {
		sameLog(t, st, "C", log, s.name, readLog(t, s.base))
	}
	l.check(t, st, log)
	for _, s := range subs {
		s.checkAgainst(t, log)
	}

	// The shared order has every item whose addOrderItem was acknowledged
	// (all sixteen, unless some failed above), on every instance, now and
	// as of the head: no update was lost.
	for _, inst := range srv {
		var d struct{ Now, At *order }
		must(t, inst.base, `query($id: ID!, $p: Position) { now: order(id: $id) { `+orderFields+` } at: order(id: $id, at: {position: $p}) { `+orderFields+` } }`,
			map[string]any{"id": shared.ID, "p": strconv.FormatInt(head, 10)}, &d)
		for _, o := range []*order{d.Now, d.At} {
			if o == nil || o.Version != 1+len(ackedItems) || len(o.Items) != len(ackedItems) {
				st.anomaly(t, "%s: the shared order is %+v; want version %d with the %d acknowledged items", inst.name, o, 1+len(ackedItems), len(ackedItems))
				continue
			}
			for _, it := range o.Items {
				var i int
				if _, err := fmt.Sscanf(it.Sku, "sku-%02d", &i); err != nil || !ackedItems[i] || it.Quantity != i+1 || it.UnitPriceCents != 100+i {
					st.anomaly(t, "%s: the shared order has item %+v", inst.name, it)
				}
			}
		}
	}
	began := time.Now()
	checkStreams(t, st, log, 40, a, c)
	t.Logf("checked %d streams (40 hash chains) in %v", len(streamVersions(log)), time.Since(began).Round(time.Millisecond))
	t.Logf("%d events in the log; %d subscribers received %d events", len(log), len(subs), st.delivered.Load())
}

// ---------------------------------------------------------------------------
// 3. Crash.

// TestScenarioCrash kills instance A with SIGKILL while writers append
// through A, B and C. No acknowledged append is lost and none is partly
// visible; subscribers on B and C continue without a break; subscribers on
// A reconnect to a survivor with their last position and get exactly what
// they missed; restarted, A serves the same log, heads and streams as the
// others.
func TestScenarioCrash(t *testing.T) {
	st := newScenario("3 crash")
	dir := t.TempDir()
	db := startDevdb(t, dir)
	srv := startServers(t, dir, db.env(), "A", "B", "C")
	a, b, c := srv[0], srv[1], srv[2]

	survivors := []*subscriber{
		startSubscriber(t, st, "transport-ws@B", protoTransportWS, b.base, false),
		startSubscriber(t, st, "sse@C", protoSSE, c.base, false),
	}
	onA := []*subscriber{
		startSubscriber(t, st, "graphql-ws@A", protoGraphQLWS, a.base, true),
		startSubscriber(t, st, "sse@A", protoSSE, a.base, true),
	}

	// Writers on every instance; a writer of A keeps trying A while it is
	// down, and writes through it again once it is back.
	var l ledger
	var wg sync.WaitGroup
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	startWriters(ctx, &wg, &l, st, srv, "crash", 4, 10*time.Millisecond)
	var rr atomic.Int64
	roundRobin := func() *server { return srv[rr.Add(1)%3] }
	var orderFailures []string
	wg.Go(func() { orderFailures = orderWriter(ctx, &l, st, "orders", roundRobin, 0) })

	time.Sleep(1500 * time.Millisecond)
	a.kill()
	t.Logf("killed A at head %d", headPosition(t, b.base))
	// The clients of A reconnect to survivors with their last position.
	onA[0].setBase(b.base)
	onA[1].setBase(c.base)

	time.Sleep(2 * time.Second)
	// Subscribers on the survivors kept going after the kill.
	headAfterKill := headPosition(t, b.base)
	settle(t, headAfterKill, []*server{b, c}, survivors)

	a.restart()
	time.Sleep(1500 * time.Millisecond)
	stopWriters()
	wg.Wait()

	// Appends whose outcome the writer did not see are sent again with
	// the same ids; then every append is acknowledged exactly once.
	_, _, lost := l.counts()
	failures := map[string]int{}
	for _, o := range l.all() {
		if !o.Acked {
			failures[fmt.Sprintf("via %s, code %q", o.Server, o.Code)]++
		}
	}
	t.Logf("failed appends: %v", failures)
	settleAll(t, &l, srv, nil)
	log := readLog(t, b.base)
	checkLog(t, st, "B before retries", log)
	present := l.check(t, st, log)
	t.Logf("%d appends failed (A was down), %d of them were written anyway", lost, present)
	l.retryFailed(t, st, b.base)

	head := settleAll(t, &l, srv, append(append([]*subscriber{}, survivors...), onA...))
	log = readLog(t, b.base)
	checkLog(t, st, "B", log)
	l.check(t, st, log)
	for _, s := range []*server{a, c} {
		sameLog(t, st, "B", log, s.name, readLog(t, s.base))
		if h := headPosition(t, s.base); h != head {
			st.anomaly(t, "%s: headPosition %d, B has %d", s.name, h, head)
		}
	}
	for _, s := range survivors {
		s.checkAgainst(t, log)
		if _, ends := s.snapshot(); len(ends) > 0 {
			st.anomaly(t, "subscriber %s on a survivor was interrupted: %v", s.name, ends)
		}
	}
	for _, s := range onA {
		s.checkAgainst(t, log)
		if _, ends := s.snapshot(); len(ends) == 0 {
			st.anomaly(t, "subscriber %s did not notice that A was killed", s.name)
		}
	}
	checkStreams(t, st, log, 40, a, b)
	acked, events, _ := l.counts()
	t.Logf("%d events in the log; %d appends (%d events) acknowledged, %d of them after a retry", len(log), acked, events, lost)
	if len(orderFailures) > 0 {
		t.Logf("%d order lifecycles abandoned after a failed command, e.g. %s", len(orderFailures), orderFailures[0])
	}
}

// ---------------------------------------------------------------------------
// 4. Store outage.

// TestScenarioStoreOutage kills devdb for 5 s while writers append through A
// and B. Appends fail fast with STORE_UNAVAILABLE, the servers stay up
// (/healthz) and keep answering reads from memory, and when devdb comes
// back on the same port and data directory everything recovers without a
// restart: writes succeed, failed appends retried with the same ids land
// once, and subscribers (resubscribing with their last position if they
// were ended) have received exactly the log.
func TestScenarioStoreOutage(t *testing.T) {
	st := newScenario("4 store outage")
	dir := t.TempDir()
	db := startDevdb(t, dir)
	srv := startServers(t, dir, db.env(), "A", "B")
	a, b := srv[0], srv[1]
	subs := []*subscriber{
		startSubscriber(t, st, "transport-ws@A", protoTransportWS, a.base, true),
		startSubscriber(t, st, "graphql-ws@B", protoGraphQLWS, b.base, true),
		startSubscriber(t, st, "sse@B", protoSSE, b.base, true),
	}

	var l ledger
	var wg sync.WaitGroup
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	startWriters(ctx, &wg, &l, st, srv, "outage", 3, 100*time.Millisecond)

	time.Sleep(time.Second)
	headBefore := headPosition(t, a.base)
	down := time.Now()
	db.kill()
	t.Logf("devdb killed at head %d", headBefore)

	// An order command on each instance during the outage fails fast, too.
	type orderProbe struct {
		server string
		r      *gqlResponse
		err    error
		took   time.Duration
	}
	probes := make(chan orderProbe, len(srv))
	for _, s := range srv {
		go func() {
			time.Sleep(time.Second)
			start := time.Now()
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, r, err := orderCmd(rctx, s.base, createOrderM, map[string]any{"c": "outage"})
			probes <- orderProbe{s.name, r, err, time.Since(start)}
		}()
	}

	// During the outage the servers stay up and keep answering reads from
	// memory.
	for time.Since(down) < 5*time.Second {
		for _, s := range srv {
			resp, err := http.Get(s.base + "/healthz")
			if err != nil {
				st.anomaly(t, "%s /healthz during the outage: %v", s.name, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				st.anomaly(t, "%s /healthz during the outage: %d", s.name, resp.StatusCode)
			}
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := post(rctx, s.base, `{ headPosition stream(id: "outage-w0A") { version } }`, nil)
			cancel()
			if err != nil || !r.ok() {
				st.anomaly(t, "%s: a read from memory during the outage: %v %v", s.name, r, err)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for range srv {
		p := <-probes
		if p.err != nil || p.r == nil || p.r.code() != "STORE_UNAVAILABLE" || p.took > 3500*time.Millisecond {
			st.anomaly(t, "%s: createOrder during the outage took %v: %v %v; want STORE_UNAVAILABLE within 3.5s", p.server, p.took.Round(time.Millisecond), p.r, p.err)
		}
	}
	db.start()
	up := time.Now()
	t.Logf("devdb back after %v", up.Sub(down).Round(time.Millisecond))

	// Recovery without restarting the servers: a write goes through each.
	for _, s := range srv {
		for {
			ids, evs := newAppend("probe", "outage-probe", 1, 0)
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			o := appendEvents(rctx, s.base, s.name, "probe", "outage-probe", ids, evs)
			cancel()
			l.add(o)
			if o.Acked {
				st.written.Add(1)
				break
			}
			if time.Since(up) > 60*time.Second {
				t.Fatalf("%s: no write succeeds 60s after the store came back: %s", s.name, o)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("writes succeed again %v after the store came back", time.Since(up).Round(time.Millisecond))
	time.Sleep(time.Second)
	stopWriters()
	wg.Wait()

	// Every failure was a fast STORE_UNAVAILABLE, and there were some.
	var unavailable int
	var slowestOK time.Duration
	for _, o := range l.all() {
		if o.Acked {
			if o.Started.After(down) && o.Started.Before(up) {
				slowestOK = max(slowestOK, o.Took)
			}
			continue
		}
		t.Logf("started at +%v of the outage (+0..+%v): %s", o.Started.Sub(down).Round(time.Millisecond), up.Sub(down).Round(time.Millisecond), o)
		if o.Code != "STORE_UNAVAILABLE" {
			st.anomaly(t, "append failed otherwise than STORE_UNAVAILABLE: %s", o)
		} else {
			unavailable++
		}
		if o.Took > 3500*time.Millisecond {
			st.anomaly(t, "append took %v to fail: %s", o.Took.Round(time.Millisecond), o)
		}
		if o.Started.Before(down) && o.Started.Add(o.Took).Before(down) {
			st.anomaly(t, "append failed before the outage: %s", o)
		}
	}
	if unavailable == 0 {
		t.Errorf("no append failed during the outage: the outage was not exercised")
	}
	t.Logf("the slowest append started during the outage that succeeded took %v", slowestOK.Round(time.Millisecond))

	settleAll(t, &l, srv, nil)
	log := readLog(t, a.base)
	checkLog(t, st, "A before retries", log)
	present := l.check(t, st, log)
	t.Logf("%d appends failed with STORE_UNAVAILABLE, %d of them were written anyway", unavailable, present)
	l.retryFailed(t, st, a.base)

	settleAll(t, &l, srv, subs)
	log = readLog(t, a.base)
	checkLog(t, st, "A", log)
	sameLog(t, st, "A", log, "B", readLog(t, b.base))
	l.check(t, st, log)
	for _, s := range subs {
		s.checkAgainst(t, log)
		if _, ends := s.snapshot(); len(ends) > 0 {
			t.Logf("subscriber %s resubscribed %d times: %v", s.name, len(ends), ends)
		}
	}
	checkStreams(t, st, log, 40, a, b)
	t.Logf("%d events in the log", len(log))
}

// ---------------------------------------------------------------------------
// 5. Bad input.

// TestScenarioBadInput sends a battery of bad requests to one server. Each
// gets its HTTP status and extensions.code, no message leaks internals, the
// good write after each one works, and in the end the log holds exactly the
// good writes.
func TestScenarioBadInput(t *testing.T) {
	st := newScenario("5 bad input")
	dir := t.TempDir()
	s := startServers(t, dir, nil, "S")[0]

	// Good writes: appends with known ids and order commands; the log must
	// end up holding exactly these.
	var l ledger
	good := 0
	goodAppend := func(t *testing.T) {
		t.Helper()
		good++
		stream := fmt.Sprintf("good-%d", good%3)
		ids, evs := newAppend("good", stream, 1, 0)
		o := appendEvents(context.Background(), s.base, s.name, "good", stream, ids, evs)
		l.add(o)
		if !o.Acked {
			st.anomaly(t, "the good append after a bad request failed: %s", o)
			return
		}
		st.written.Add(1)
	}
	goodOrder := func(m string, vars map[string]any) order {
		t.Helper()
		o, r, err := orderCmd(context.Background(), s.base, m, vars)
		if err != nil || o == nil {
			t.Fatalf("%s: %v %v", firstLine(m), r, err)
		}
		l.addOrder(o)
		st.written.Add(1)
		return *o
	}
	goodAppend(t)
	draft := goodOrder(createOrderM, map[string]any{"c": "battery"})
	placed := goodOrder(createOrderM, map[string]any{"c": "battery"})
	goodOrder(addItemM, map[string]any{"id": placed.ID, "sku": "x", "q": 2, "p": 500})
	placed = goodOrder(placeM, map[string]any{"id": placed.ID})
	headBefore := headPosition(t, s.base)

	gqlBody := func(query string, vars map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		return b
	}
	appendBody := func(events any) []byte {
		return gqlBody(`mutation($e: [NewEvent!]!) { appendToStream(streamId: "bad", events: $e) { lastPosition } }`,
			map[string]any{"e": events})
	}
	nested := func(open, mid, close string, n int) string {
		return strings.Repeat(open, n) + mid + strings.Repeat(close, n)
	}
	aliases := func(n int, field string) string {
		var q strings.Builder
		q.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&q, " a%d: %s", i, field)
		}
		q.WriteString(" }")
		return q.String()
	}
	event := func(size int) map[string]any {
		return map[string]any{"type": "Big", "data": map[string]any{"x": strings.Repeat("y", size)}}
	}
	manyEvents := func(n, size int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = event(size)
		}
		return out
	}
	const (
		mib       = 1 << 20
		anyStatus = 0
		anyCode   = "*"
	)

	type badCase struct {
		name        string
		method      string // default POST
		contentType string // default application/json
		body        []byte
		chunked     bool // send without Content-Length
		status      int
		code        string                      // "" = no errors expected
		check       func(r *gqlResponse) string // extra check; returns a problem or ""
	}
	nullData := func(field string) func(r *gqlResponse) string {
		return func(r *gqlResponse) string {
			var d map[string]json.RawMessage
			if err := json.Unmarshal(r.Data, &d); err != nil || string(d[field]) != "null" {
				return fmt.Sprintf("data.%s is not null", field)
			}
			return ""
		}
	}
	cases := []badCase{
		{name: "malformed JSON", body: []byte(`{"query": "{ headPosition }"`), status: 400, code: "BAD_USER_INPUT"},
		{name: "JSON that is not an object", body: []byte(`[1, 2]`), status: 400, code: "BAD_USER_INPUT"},
		{name: "not JSON content type", contentType: "text/plain", body: gqlBody(`{ headPosition }`, nil), status: 415, code: "BAD_USER_INPUT"},
		{name: "mutation over GET", method: http.MethodGet, status: 405, code: "BAD_USER_INPUT"},
		{name: "wrong variable type: string for Int", body: gqlBody(`query($n: Int) { events(first: $n) { pageInfo { hasNextPage } } }`, map[string]any{"n": "ten"}), status: 200, code: "BAD_USER_INPUT"},
		{name: "wrong variable type: numeric string for Int", body: gqlBody(`query($n: Int) { events(first: $n) { pageInfo { hasNextPage } } }`, map[string]any{"n": "10"}), status: 200, code: "BAD_USER_INPUT"},
		{name: "wrong variable type: object for Position", body: gqlBody(`query($p: Position) { events(afterPosition: $p) { pageInfo { hasNextPage } } }`, map[string]any{"p": map[string]any{"x": 1}}), status: 200, code: "BAD_USER_INPUT"},
		{name: "wrong variable type: number for event type", body: appendBody([]any{map[string]any{"type": 5, "data": map[string]any{}}}), status: 200, code: "BAD_USER_INPUT"},
		{name: "wrong variable type: string for [NewEvent!]!", body: appendBody("events"), status: 200, code: "BAD_USER_INPUT"},
		{name: "20 MiB body", body: append(gqlBody(`{ headPosition }`, map[string]any{"pad": strings.Repeat("x", 20*mib)}), ' '), status: 413, code: "BAD_USER_INPUT"},
		{name: "20 MiB body, chunked", chunked: true, body: gqlBody(`{ headPosition }`, map[string]any{"pad": strings.Repeat("x", 20*mib)}), status: 413, code: "BAD_USER_INPUT"},
		{name: "10,000-level nested selections", body: gqlBody(`{ `+nested(`a: stream(id: "x") { `, "id", " }", 10000)+` }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "10,000-level nested list literal", body: gqlBody(`mutation { appendToStream(streamId: "bad", events: [{type: "T", data: `+nested("[", "1", "]", 10000)+`}]) { lastPosition } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "10,000-level nested JSON variable", body: []byte(`{"query": "mutation($e: [NewEvent!]!) { appendToStream(streamId: \"bad\", events: $e) { lastPosition } }", "variables": {"e": [{"type": "T", "data": ` + nested(`{"a":`, "1", "}", 10000) + `}]}}`), status: 400, code: "BAD_USER_INPUT"},
		// Over the field, alias or complexity limit: rejected, whichever limit
		// trips first.
		{name: "1,000 aliases of a page of 1,000 events", body: gqlBody(aliases(1000, `events(first: 1000) { edges { cursor } }`), nil), status: anyStatus, code: "BAD_USER_INPUT"},
		// A server may answer this or refuse it as too many aliases.
		{name: "1,000 aliases of headPosition", body: gqlBody(aliases(1000, `headPosition`), nil), status: anyStatus, code: anyCode, check: func(r *gqlResponse) string {
			if len(r.Errors) > 0 {
				if r.code() != "BAD_USER_INPUT" || r.Status == http.StatusInternalServerError {
					return "want 1,000 answers or BAD_USER_INPUT"
				}
				return ""
			}
			var d map[string]string
			if err := json.Unmarshal(r.Data, &d); err != nil || len(d) != 1000 || d["a999"] != strconv.FormatInt(headBefore, 10) {
				return fmt.Sprintf("want 1,000 answers of %d", headBefore)
			}
			return ""
		}},
		{name: "circular fragments", body: gqlBody(`fragment A on Query { headPosition ...B } fragment B on Query { ...A } { ...A }`, nil), status: 200, code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "syntax error", body: gqlBody(`{ headPosition `, nil), status: 200, code: "GRAPHQL_PARSE_FAILED"},
		{name: "unknown field", body: gqlBody(`{ nope }`, nil), status: 200, code: "GRAPHQL_VALIDATION_FAILED"},
		{name: "unknown stream", body: gqlBody(`{ stream(id: "no-such-stream") { version state } }`, nil), status: 200, check: nullData("stream")},
		{name: "unknown order", body: gqlBody(`{ order(id: "no-such-order") { id } }`, nil), status: 200, check: nullData("order")},
		{name: "append expecting an unknown stream to exist", body: gqlBody(`mutation { appendToStream(streamId: "no-such-stream", expectedState: STREAM_EXISTS, events: [{type: "T", data: {}}]) { lastPosition } }`, nil), status: 200, code: "WRONG_EXPECTED_VERSION"},
		{name: "append at a wrong expected version", body: gqlBody(`mutation { appendToStream(streamId: "good-1", expectedVersion: 99, events: [{type: "T", data: {}}]) { lastPosition } }`, nil), status: 200, code: "WRONG_EXPECTED_VERSION"},
		{name: "append with both expectedVersion and expectedState", body: gqlBody(`mutation { appendToStream(streamId: "good-1", expectedVersion: 1, expectedState: ANY, events: [{type: "T", data: {}}]) { lastPosition } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "append to a reserved stream id", body: gqlBody(`mutation { appendToStream(streamId: "$all", events: [{type: "T", data: {}}]) { lastPosition } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "append of no events", body: appendBody([]any{}), status: 200, code: "BAD_USER_INPUT"},
		{name: "append with an id that is not a UUID", body: appendBody([]any{map[string]any{"id": "nope", "type": "T", "data": 1}}), status: 200, code: "BAD_USER_INPUT"},
		{name: "append whose third event is invalid", body: appendBody([]any{event(1), event(1), map[string]any{"type": "", "data": 1}}), status: 200, code: "BAD_USER_INPUT"},
		{name: "placeOrder on an unknown order", body: gqlBody(`mutation { placeOrder(orderId: "no-such-order") { id } }`, nil), status: 200, code: "NOT_FOUND"},
		{name: "addOrderItem on an unknown order", body: gqlBody(`mutation { addOrderItem(orderId: "no-such-order", item: {sku: "a", quantity: 1, unitPriceCents: 1}) { id } }`, nil), status: 200, code: "NOT_FOUND"},
		{name: "placeOrder without items", body: gqlBody(`mutation($id: ID!) { placeOrder(orderId: $id) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "INVALID_STATE"},
		{name: "payOrder on a draft", body: gqlBody(`mutation($id: ID!) { payOrder(orderId: $id, amountCents: 0) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "INVALID_STATE"},
		{name: "shipOrder on a draft", body: gqlBody(`mutation($id: ID!) { shipOrder(orderId: $id, trackingNumber: "T") { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "INVALID_STATE"},
		{name: "removeOrderItem of a missing sku", body: gqlBody(`mutation($id: ID!) { removeOrderItem(orderId: $id, sku: "nope") { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "INVALID_STATE"},
		{name: "addOrderItem on a placed order", body: gqlBody(`mutation($id: ID!) { addOrderItem(orderId: $id, item: {sku: "a", quantity: 1, unitPriceCents: 1}) { id } }`, map[string]any{"id": placed.ID}), status: 200, code: "INVALID_STATE"},
		{name: "payOrder with the wrong amount", body: gqlBody(`mutation($id: ID!) { payOrder(orderId: $id, amountCents: 999) { id } }`, map[string]any{"id": placed.ID}), status: 200, code: "INVALID_STATE"},
		{name: "cancelOrder at a stale expected version", body: gqlBody(`mutation($id: ID!) { cancelOrder(orderId: $id, reason: "r", expectedVersion: 1) { id } }`, map[string]any{"id": placed.ID}), status: 200, code: "WRONG_EXPECTED_VERSION"},
		{name: "addOrderItem quantity 0", body: gqlBody(`mutation($id: ID!) { addOrderItem(orderId: $id, item: {sku: "a", quantity: 0, unitPriceCents: 1}) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "BAD_USER_INPUT"},
		{name: "addOrderItem quantity 10,001", body: gqlBody(`mutation($id: ID!) { addOrderItem(orderId: $id, item: {sku: "a", quantity: 10001, unitPriceCents: 1}) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "BAD_USER_INPUT"},
		{name: "addOrderItem negative price", body: gqlBody(`mutation($id: ID!) { addOrderItem(orderId: $id, item: {sku: "a", quantity: 1, unitPriceCents: -1}) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "BAD_USER_INPUT"},
		{name: "addOrderItem 65-character sku", body: gqlBody(`mutation($id: ID!, $sku: String!) { addOrderItem(orderId: $id, item: {sku: $sku, quantity: 1, unitPriceCents: 1}) { id } }`, map[string]any{"id": draft.ID, "sku": strings.Repeat("s", 65)}), status: 200, code: "BAD_USER_INPUT"},
		{name: "createOrder without a customer", body: gqlBody(`mutation { createOrder(customerId: "") { id } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "one event over 4 MiB", body: appendBody([]any{event(5 * mib)}), status: 200, code: "BAD_USER_INPUT"},
		{name: "five 1 MiB events", body: appendBody(manyEvents(5, mib)), status: 200, code: "BAD_USER_INPUT"},
		{name: "1,001 events", body: appendBody(manyEvents(1001, 1)), status: 200, code: "BAD_USER_INPUT"},
		{name: "PointInTime with position and version", body: gqlBody(`query($id: ID!) { order(id: $id, at: {position: "1", version: 1}) { id } }`, map[string]any{"id": draft.ID}), status: 200, code: "BAD_USER_INPUT"},
		{name: "PointInTime with time and position", body: gqlBody(`{ stream(id: "good-1") { state(at: {time: "2030-01-01T00:00:00Z", position: "1"}) } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "PointInTime with two fields in orderStats", body: gqlBody(`{ orderStats(at: {time: "2030-01-01T00:00:00Z", position: "1"}) { revenueCents } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "events first: 100000", body: gqlBody(`{ events(first: 100000) { pageInfo { hasNextPage } } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "stream events first: 100000", body: gqlBody(`{ stream(id: "good-1") { events(first: 100000) { pageInfo { hasNextPage } } } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "orders first: 100000", body: gqlBody(`{ orders(first: 100000) { totalCount } }`, nil), status: 200, code: "BAD_USER_INPUT"},
		{name: "events first: 0", body: gqlBody(`{ events(first: 0) { pageInfo { hasNextPage } } }`, nil), status: 200, code: "BAD_USER_INPUT"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var req *http.Request
			switch {
			case c.method == http.MethodGet:
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet,
					s.base+`/graphql?query=`+strings.ReplaceAll(`mutation{appendToStream(streamId:"bad",events:[{type:"T",data:1}]){lastPosition}}`, `"`, "%22"), nil)
			case c.chunked:
				req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/graphql", io.MultiReader(strings.NewReader(string(c.body))))
			default:
				req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/graphql", strings.NewReader(string(c.body)))
			}
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			r, err := doRequest(req)
			switch {
			case err != nil:
				st.anomaly(t, "%s: %v", c.name, err)
			case c.status != anyStatus && r.Status != c.status:
				st.anomaly(t, "%s: status %d, want %d: %s", c.name, r.Status, c.status, r)
			case c.code == anyCode:
			case c.code == "" && len(r.Errors) > 0:
				st.anomaly(t, "%s: errors %s", c.name, r)
			case c.code != "" && (len(r.Errors) == 0 || r.code() != c.code):
				st.anomaly(t, "%s: want code %s: %s", c.name, c.code, r)
			}
			if r != nil {
				for _, e := range r.Errors {
					if e.code() == "" {
						st.anomaly(t, "%s: an error without extensions.code: %+v", c.name, e)
					}
					lower := strings.ToLower(e.Message)
					for _, leak := range []string{"mongo", "ferret", "sqlite", "eventstore", "goroutine", ".go:", "panic", "runtime error"} {
						if strings.Contains(lower, leak) {
							st.anomaly(t, "%s: the message leaks %q: %s", c.name, leak, e.Message)
						}
					}
				}
				if c.check != nil {
					if p := c.check(r); p != "" {
						st.anomaly(t, "%s: %s: %s", c.name, p, r)
					}
				}
			}
			// The next good request works.
			goodAppend(t)
		})
	}

	// The store holds exactly the good writes.
	acked, _, _ := l.counts()
	if h := headPosition(t, s.base); h != headBefore+int64(acked-1) {
		st.anomaly(t, "headPosition %d after the battery; want %d (before) + %d good appends", h, headBefore, acked-1)
	}
	log := readLog(t, s.base)
	checkLog(t, st, "S", log)
	l.check(t, st, log)
	want := map[string]bool{}
	for _, o := range l.all() {
		for _, id := range o.IDs {
			want[id] = true
		}
	}
	var stray []logEvent
	for _, e := range log {
		if !want[e.ID] && !strings.HasPrefix(e.StreamID, "order-") {
			stray = append(stray, e)
		}
	}
	if len(stray) > 0 || int64(len(log)) != headBefore+int64(acked-1) {
		st.anomaly(t, "the log holds %d events, want %d good ones; not written by a good request: %+v", len(log), headBefore+int64(acked-1), stray)
	}
	// Nothing reached the stream the rejected appends named.
	var d struct{ Stream *struct{ Version int } }
	must(t, s.base, `{ stream(id: "bad") { version } }`, nil, &d)
	if d.Stream != nil {
		st.anomaly(t, "the stream of rejected appends exists: %+v", d.Stream)
	}
	s.p.stop(30 * time.Second)
}

// ---------------------------------------------------------------------------
// 6. Graceful shutdown under load.

// shutdownAfterAppends is how many appends TestScenarioGracefulShutdown
// waits for before SIGTERM: about 20 MB of events, half of them bulky,
// which the restart loads again.
const shutdownAfterAppends = 200

// waitAcked waits until the ledger holds n acknowledged appends and returns
// the count. It fails when no append is acknowledged for a minute, which
// bounds the absence of progress rather than the machine's speed.
func waitAcked(t *testing.T, l *ledger, n int) int {
	t.Helper()
	last, since := -1, time.Now()
	for {
		acked, _, _ := l.counts()
		if acked >= n {
			return acked
		}
		if acked != last {
			last, since = acked, time.Now()
		} else if time.Since(since) > time.Minute {
			t.Fatalf("%d of %d appends acknowledged, none for a minute", acked, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScenarioGracefulShutdown sends SIGTERM to a server while writers keep
// appending and running order commands. It exits 0 in time; every request
// either was acknowledged or failed cleanly (a coded error or a refused
// connection, never an internal error); nothing partial is left. After a
// restart every stream's hash chain verifies and every acknowledged write
// is there.
func TestScenarioGracefulShutdown(t *testing.T) {
	st := newScenario("6 graceful shutdown")
	dir := t.TempDir()
	s := startServers(t, dir, nil, "S")[0]
	// Subscribers are ended at shutdown (the websocket with 1001, going
	// away) and resume from their last position after the restart.
	subs := []*subscriber{
		startSubscriber(t, st, "transport-ws@S", protoTransportWS, s.base, true),
		startSubscriber(t, st, "sse@S", protoSSE, s.base, true),
	}

	var l ledger
	var wg sync.WaitGroup
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	// Small appends in a tight loop, and bulky ones (up to 10 events of
	// 32 KiB) that take longer, so that several are in flight at SIGTERM.
	for i := 0; i < 8; i++ {
		name := fmt.Sprintf("w%d", i)
		streams := []string{"shutdown-" + name, fmt.Sprintf("shutdown-shared-%d", i%2)}
		max, pad := 3, 0
		if i%2 == 1 {
			max, pad = 10, 32<<10
		}
		wg.Go(func() { appendWriter{name, fixed(s), streams, max, 0, 0, pad}.run(ctx, &l, st) })
	}
	var orderFailures []string
	wg.Go(func() { orderFailures = orderWriter(ctx, &l, st, "orders", fixed(s), 0) })

	// SIGTERM after a fixed amount of work rather than a fixed time, so
	// that the log the restart loads is the same size on a fast machine
	// and a loaded one. Writers keep appending until the signal, so some
	// are in flight when it comes.
	acked0 := waitAcked(t, &l, shutdownAfterAppends)
	termAt := time.Now()
	if err := s.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The server's own bounds: 10 s for in-flight requests, then 15 s to
	// close the projections, the store and the embedded store.
	select {
	case <-s.p.done:
	case <-time.After(60 * time.Second):
		st.anomaly(t, "no exit 60s after SIGTERM")
		s.kill()
	}
	took := time.Since(termAt)
	if s.p.err != nil {
		st.anomaly(t, "exit after SIGTERM: %v", s.p.err)
	}
	stopWriters()
	wg.Wait()
	t.Logf("exited %v after SIGTERM; %d appends acknowledged before it", took.Round(time.Millisecond), acked0)
	var inFlightAcked, inFlightFailed int
	for _, o := range l.all() {
		if o.Started.Before(termAt) && o.Started.Add(o.Took).After(termAt) {
			if o.Acked {
				inFlightAcked++
			} else {
				inFlightFailed++
			}
		}
	}
	t.Logf("appends in flight at SIGTERM: %d acknowledged, %d failed", inFlightAcked, inFlightFailed)

	// Each failure is clean: a refused or closed connection (nothing was
	// processed) or a coded error that is not internal.
	failed := 0
	for _, o := range l.all() {
		if o.Acked {
			continue
		}
		failed++
		if o.Status != 0 && (o.Code == "" || o.Code == "INTERNAL_SERVER_ERROR") {
			st.anomaly(t, "a mutation failed uncleanly: %s", o)
		}
	}
	for _, f := range orderFailures {
		if strings.Contains(f, "INTERNAL_SERVER_ERROR") || strings.Contains(f, "body not JSON") {
			st.anomaly(t, "an order command failed uncleanly: %s", f)
		}
	}

	s.restart()
	log := readLog(t, s.base)
	checkLog(t, st, "after restart", log)
	present := l.check(t, st, log)
	t.Logf("%d appends failed during shutdown, %d of them were written anyway", failed, present)
	l.retryFailed(t, st, s.base)
	log = readLog(t, s.base)
	checkLog(t, st, "after retries", log)
	l.check(t, st, log)
	checkStreams(t, st, log, 0, s)
	settle(t, int64(len(log)), nil, subs)
	for _, sub := range subs {
		sub.checkAgainst(t, log)
	}
	if _, ends := subs[0].snapshot(); len(ends) == 0 || !strings.Contains(ends[0], "StatusGoingAway") {
		st.anomaly(t, "the websocket did not end with 1001 (going away) at shutdown: %v", ends)
	}
	if _, ends := subs[1].snapshot(); len(ends) == 0 || !strings.Contains(ends[0], "completed by the server") {
		st.anomaly(t, "the SSE stream was not completed at shutdown: %v", ends)
	}
	acked, events, _ := l.counts()
	t.Logf("%d events in the log, %d streams verified; %d appends (%d events) acknowledged", len(log), len(streamVersions(log)), acked, events)
	s.p.stop(30 * time.Second)
}
