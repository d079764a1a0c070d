// Command projbench measures declarative projections (issue 19) against
// baselines taken in the same run, on the same store and log:
//
//  1. It loads -orders order streams of -per events each (OrderCreated,
//     then OrderItemAdded; customers c-0 .. c-499) plus one stream of
//     -whale events of the customer "whale": 200,000 + 10,000 events by
//     default, with 8 concurrent appenders.
//  2. Rebuild baseline: opens a second projections service on the store and
//     times Open until its order read model is Ready (the built-in order
//     projection's rebuild).
//  3. Defines, on that service, a simple reducer that sums a field over the
//     order streams (partitioned by stream), and a customer-keyed one
//     (partitionBy .data.customerId), each timed from Define until its
//     version is built; progress is logged by the projection. Events per
//     second = matching events / time. Steps 2 and 3 run with GOMAXPROCS=1
//     (one core); the builds start once the order projector's snapshot
//     writes are done. Targets: ≥ 50,000 events/s; each build ≤ 2× the rebuild.
//     Each row also gives the process's CPU time and how long it waited for
//     a CPU (Linux schedstat): on a shared machine that wait is in the wall
//     clock and not in the work.
//  4. The whale's partition at version 9,999 of 10,000 against version 99:
//     p50 of -reps reads each. Target: ≤ 2×.
//  5. A page of 50 partitions at a random past time: p50 of -reps reads
//     (without totalCount, and with it, which visits every partition).
//     Target: p50 ≤ 5 ms.
//  6. Restart: a second service on the store, as a restarted server, until
//     its order read model and both declarative projections are ready; the
//     projections are restored from the snapshots the first one wrote
//     instead of folded. Against the rebuild of step 2, on one core. Then,
//     from the same start, until the background refill has folded every
//     restored state again (one pass over the log).
//  7. Refolds: a third service with a declarative memory budget of one
//     byte restores both projections and keeps no state's JSON, so every
//     read folds its state again from the kept snapshot before it (at most
//     SnapshotEvery events), as a read of an evicted state does: p50 of
//     -reps reads, against the same reads on the first service.
//
// Run from the repository root (about two minutes here):
//
//	go run ./cmd/projbench
//	go run ./cmd/projbench -orders 200 -whale 10000   # smaller log, quicker
//
// It starts the embedded store in a temporary directory unless -mongodb-uri
// is given. It reports; it does not enforce the targets.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/benchserver"
	"github.com/hindsight-dev/hindsight/projections"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "projbench:", err)
		os.Exit(1)
	}
}

type config struct {
	orders, per, whale, reps int
	uri, profile, refoldProf string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("projbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.orders, "orders", 2000, "order streams")
	fs.IntVar(&c.per, "per", 100, "events per order stream")
	fs.IntVar(&c.whale, "whale", 10000, "events of the one big customer's stream")
	fs.IntVar(&c.reps, "reps", 500, "reads per measured query")
	fs.StringVar(&c.uri, "mongodb-uri", "", "store URI; empty = an embedded store in a temporary directory")
	fs.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of the builds (step 3) to this file")
	fs.StringVar(&c.refoldProf, "refoldprofile", "", "write a CPU profile of the refold reads (step 7) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	uri := c.uri
	if uri == "" {
		dir, err := os.MkdirTemp("", "projbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := embedded.Start(ctx, embedded.Config{Dir: dir, Logger: log})
		if err != nil {
			return err
		}
		defer srv.Close(context.Background())
		uri = srv.URI()
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer client.Disconnect(context.Background())
	db := fmt.Sprintf("projbench_%d", time.Now().UnixNano())
	defer client.Database(db).Drop(context.Background())
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := eventstore.Open(ctx, client, db, eventstore.WithLogger(quiet), eventstore.WithMemoryBudget(0))
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	if err := store.WaitReady(ctx); err != nil {
		return err
	}
	if err := load(ctx, store, c, log); err != nil {
		return err
	}
	total := int64(c.orders*c.per + c.whale)
	fmt.Fprintf(stdout, "\n## Declarative projections (issue 19): %d events, %d order streams, one of %d events\n\n", total, c.orders+1, c.whale)

	// 2 and 3: one core.
	prev := runtime.GOMAXPROCS(1)
	start, cpu0, wait0 := time.Now(), benchserver.SelfCPU(), cpuWait()
	svc, err := projections.New(store, projections.Options{Logger: log.With("component", "projections")})
	if err != nil {
		return err
	}
	if err := svc.Open(ctx); err != nil {
		return err
	}
	defer svc.Close(context.Background())
	for !svc.Ready() {
		time.Sleep(time.Millisecond)
	}
	rebuild, rebuildCPU, rebuildWait := time.Since(start), benchserver.SelfCPU()-cpu0, cpuWait()-wait0
	// The order projector queues snapshots as it passes every 100th version;
	// their writes (FerretDB runs in this process) would be billed to the
	// builds below, so wait until they are done.
	waitSnapshots(svc)
	decl := svc.Declarative()
	if c.profile != "" {
		f, err := os.Create(c.profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
	}
	var buildCPU, buildWait time.Duration
	build := func(def projections.Definition) (time.Duration, error) {
		start, cpu0, wait0 := time.Now(), benchserver.SelfCPU(), cpuWait()
		defer func() { buildCPU, buildWait = benchserver.SelfCPU()-cpu0, cpuWait()-wait0 }()
		v, _, err := decl.Define(ctx, def, nil)
		if err != nil {
			return 0, err
		}
		for {
			info, _ := decl.Projection(def.Name)
			if info.ActiveVersion == v.Version {
				return time.Since(start), nil
			}
			if f := info.Versions[len(info.Versions)-1].Fault; f != nil {
				return 0, &projections.FaultError{Fault: *f}
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	var sumCPU, ltvCPU, sumWait, ltvWait time.Duration
	sum, err := build(projections.Definition{Name: "sum", StreamPrefix: "order-",
		InitialState: json.RawMessage(`{"quantity":0}`), Reducer: `.state.quantity += (.event.data.quantity // 0) | .state`})
	if err != nil {
		return err
	}
	sumCPU, sumWait = buildCPU, buildWait
	// Once built, a version saves its snapshots (for a restart) in the
	// background; let that finish before the next build is timed.
	if err := waitMarked(ctx, decl, "sum"); err != nil {
		return err
	}
	ltv, err := build(projections.Definition{Name: "by-customer", StreamPrefix: "order-", PartitionBy: ".data.customerId",
		Reducer: `.state.quantity += (.event.data.quantity // 0) | .state.events += 1 | .state`})
	if err != nil {
		return err
	}
	ltvCPU, ltvWait = buildCPU, buildWait
	runtime.GOMAXPROCS(prev)
	pprof.StopCPUProfile()
	rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
	// On a shared machine the wall clock also counts time the process waited
	// for a CPU; the process's CPU time (user + system) does not. The wait
	// (Linux's schedstat: runnable, not running) says how much of the wall
	// clock that was.
	fmt.Fprintf(stdout, "| build (GOMAXPROCS=1) | wall | events/s | ÷ rebuild | CPU | events/CPU-s | ÷ rebuild CPU | waited for a CPU | target |\n|---|---|---|---|---|---|---|---|---|\n")
	row := func(what string, d, cpu, wait time.Duration, target string) {
		fmt.Fprintf(stdout, "| %s | %v | %.0f | %.2f | %v | %.0f | %.2f | %v | %s |\n", what, d.Round(time.Millisecond), rate(d),
			float64(d)/float64(rebuild), cpu.Round(time.Millisecond), rate(cpu), float64(cpu)/float64(rebuildCPU), wait.Round(time.Millisecond), target)
	}
	row("order read model rebuild (baseline)", rebuild, rebuildCPU, rebuildWait, "")
	row("define `sum` (by stream) until built", sum, sumCPU, sumWait, "≥ 50,000/s, ≤ 2×")
	row("define `by-customer` (jq key) until built", ltv, ltvCPU, ltvWait, "≥ 50,000/s, ≤ 2×")
	fmt.Fprintln(stdout)

	// 4. Version 9,999 of 10,000 against version 99.
	at := func(v int64) func() error {
		return func() error {
			st, err := decl.State(ctx, "by-customer", "whale", eventstore.AtVersion(v), nil)
			if err == nil && st.Version != v {
				err = fmt.Errorf("asked for version %d, got %d", v, st.Version)
			}
			return err
		}
	}
	v99, err := p50(c.reps, at(99))
	if err != nil {
		return err
	}
	vLast, err := p50(c.reps, at(int64(c.whale-1)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "| query (p50 of %d) | p50 | ratio | target |\n|---|---|---|---|\n", c.reps)
	fmt.Fprintf(stdout, "| projectionState whale at version 99 (baseline) | %v | 1.00 | |\n", v99)
	fmt.Fprintf(stdout, "| projectionState whale at version %d of %d | %v | %.2f | ≤ 2× |\n", c.whale-1, c.whale, vLast, float64(vLast)/float64(v99))

	// 5. A page of 50 partitions at a random past time.
	rng := rand.New(rand.NewPCG(19, 91))
	head := store.HeadPosition()
	page := func(count bool) func() error {
		return func() error {
			t, _ := store.RecordedAt(1 + rng.Int64N(head-1))
			p, err := decl.Partitions(ctx, projections.ListPartitions{Name: "sum", At: eventstore.AtTime(t), First: 50, Count: count})
			if err == nil && len(p.Partitions) == 0 {
				err = fmt.Errorf("an empty page at %v", t)
			}
			return err
		}
	}
	for _, count := range []bool{false, true} {
		d, err := p50(c.reps, page(count))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "| projectionPartitions(first: 50, at: {time}) totalCount=%v | %v | | ≤ 5 ms |\n", count, d)
	}
	return restart(ctx, store, svc, stdout, log, rebuild, rebuildCPU, c)
}

// restart (step 6) opens another service on the store, as a restarted
// server would, and times it until both declarative projections answer,
// restored from the snapshots the first service wrote, on one core.
func restart(ctx context.Context, store *eventstore.Store, svc *projections.Service, stdout io.Writer, log *slog.Logger, rebuild, rebuildCPU time.Duration, c config) error {
	if err := waitMarked(ctx, svc.Declarative(), "by-customer"); err != nil {
		return err
	}
	waitSnapshots(svc)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	start, cpu0 := time.Now(), benchserver.SelfCPU()
	again, err := projections.New(store, projections.Options{Logger: log.With("component", "projections-restarted")})
	if err != nil {
		return err
	}
	if err := again.Open(ctx); err != nil {
		return err
	}
	defer again.Close(context.Background())
	var restored []int64
	for _, name := range []string{"sum", "by-customer"} {
		for {
			info, ok := again.Declarative().Projection(name)
			if ok && info.ActiveVersion == 1 {
				restored = append(restored, info.Versions[0].RestoredFrom)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	for !again.Ready() {
		time.Sleep(time.Millisecond)
	}
	d, cpu := time.Since(start), benchserver.SelfCPU()-cpu0
	fmt.Fprintf(stdout, "\n| restart (GOMAXPROCS=1) | wall | ÷ rebuild | CPU | ÷ rebuild CPU | restored up to |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(stdout, "| a new service: order read model + `sum` + `by-customer` ready | %v | %.2f | %v | %.2f | %v of %d |\n",
		d.Round(time.Millisecond), float64(d)/float64(rebuild), cpu.Round(time.Millisecond), float64(cpu)/float64(rebuildCPU),
		restored, store.HeadPosition())
	// The refill folds the restored states again in the background, one
	// pass over the log, from the moment a projection is restored; timed
	// from the same start, with nothing else running.
	for {
		a, _ := again.Declarative().Projection("by-customer")
		b, _ := svc.Declarative().Projection("by-customer")
		x, _ := again.Declarative().Projection("sum")
		y, _ := svc.Declarative().Projection("sum")
		if a.Versions[0].StateBytes == b.Versions[0].StateBytes && x.Versions[0].StateBytes == y.Versions[0].StateBytes {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	refilled, refillCPU := time.Since(start), benchserver.SelfCPU()-cpu0
	var states uint64
	for _, name := range []string{"sum", "by-customer"} {
		info, _ := again.Declarative().Projection(name)
		states += info.Versions[0].RefilledStates
	}
	fmt.Fprintf(stdout, "| the same, until the refill has folded its %d restored states again | %v | %.2f | %v | %.2f | |\n",
		states, refilled.Round(time.Millisecond), float64(refilled)/float64(rebuild), refillCPU.Round(time.Millisecond),
		float64(refillCPU)/float64(rebuildCPU))
	// The restarted service's order projector queued order snapshots; their
	// writes (FerretDB runs in this process) would share the CPU with the
	// reads below.
	waitSnapshots(again)
	st := svc.Stats()
	fmt.Fprintf(stdout, "\nThe first service's snapshot writes: %d saved, %d dropped (queue full), %d failed.\n", st.SnapshotsSaved, st.SnapshotsDropped, st.SnapshotsFailed)
	runtime.GOMAXPROCS(prev)
	return refolds(ctx, store, svc, stdout, log, c)
}

// refolds (step 7) opens a third service on the store with a declarative
// memory budget too small for any state's JSON: it restores both
// projections from their snapshots, the refill stops at once, and every
// read folds its state again from the kept snapshot before it (at most
// SnapshotEvery events), as a read of an evicted state does. Against the
// same reads on the first service, whose states are in memory.
func refolds(ctx context.Context, store *eventstore.Store, svc *projections.Service, stdout io.Writer, log *slog.Logger, c config) error {
	tight, err := projections.New(store, projections.Options{Logger: log.With("component", "projections-refold"), ProjectionMemoryBudget: 1})
	if err != nil {
		return err
	}
	if err := tight.Open(ctx); err != nil {
		return err
	}
	defer tight.Close(context.Background())
	for _, name := range []string{"sum", "by-customer"} {
		for {
			info, ok := tight.Declarative().Projection(name)
			if ok && info.ActiveVersion == 1 {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
	}
	for !tight.Ready() { // its order read model's rebuild would share the CPU with the reads
		time.Sleep(time.Millisecond)
	}
	waitSnapshots(tight) // and so would its order snapshots' writes
	if c.refoldProf != "" {
		f, err := os.Create(c.refoldProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	head := store.HeadPosition()
	queries := []struct {
		what   string
		events int // events each read folds again
		run    func(*projections.Service, *rand.Rand) error
	}{
		{"projectionState whale at version 99", 99, func(s *projections.Service, _ *rand.Rand) error { return whaleAt(ctx, s, 99)() }},
		{fmt.Sprintf("projectionState whale at version %d", c.whale-1), 99, func(s *projections.Service, _ *rand.Rand) error {
			return whaleAt(ctx, s, int64(c.whale-1))()
		}},
	}
	// A page of `sum` at a time holds whole orders (one append each): their
	// latest states, read from their own snapshots. A page of `by-customer`
	// holds customers halfway through their orders: states folded again.
	for _, name := range []string{"sum", "by-customer"} {
		queries = append(queries, struct {
			what   string
			events int
			run    func(*projections.Service, *rand.Rand) error
		}{fmt.Sprintf("projectionPartitions(first: 50, at: {time}) of `%s`", name), 0, func(s *projections.Service, rng *rand.Rand) error {
			t, _ := store.RecordedAt(1 + rng.Int64N(head-1))
			p, err := s.Declarative().Partitions(ctx, projections.ListPartitions{Name: name, At: eventstore.AtTime(t), First: 50})
			if err == nil && len(p.Partitions) == 0 {
				err = fmt.Errorf("an empty page at %v", t)
			}
			return err
		}})
	}
	fmt.Fprintf(stdout, "\n| read (p50 of %d) | states in memory (baseline) | every state folded again | ratio | events folded/s |\n|---|---|---|---|---|\n", c.reps)
	for _, q := range queries {
		inMemory, err := p50(c.reps, func() error { return q.run(svc, rand.New(rand.NewPCG(7, 7))) })
		if err != nil {
			return err
		}
		before := refoldCount(tight)
		rng := rand.New(rand.NewPCG(7, 7))
		n := c.reps + c.reps/10
		refold, err := p50(c.reps, func() error { return q.run(tight, rng) })
		if err != nil {
			return err
		}
		rate := "—"
		if q.events > 0 {
			rate = fmt.Sprintf("%.0f", float64(q.events)/refold.Seconds())
		}
		fmt.Fprintf(stdout, "| %s | %v | %v | %.1f | %s (%.1f refolds a read) |\n", q.what, inMemory, refold, float64(refold)/float64(inMemory), rate,
			float64(refoldCount(tight)-before)/float64(n))
	}
	return nil
}

func refoldCount(s *projections.Service) uint64 {
	var n uint64
	for _, name := range []string{"sum", "by-customer"} {
		info, _ := s.Declarative().Projection(name)
		n += info.Versions[0].Refolds
	}
	return n
}

// waitMarked waits until the projection's first version has saved its
// snapshots and the marker that lets a restart restore it.
func waitMarked(ctx context.Context, decl *projections.Declarative, name string) error {
	for {
		info, _ := decl.Projection(name)
		if len(info.Versions) > 0 && info.Versions[0].SnapshotsUpTo > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func whaleAt(ctx context.Context, svc *projections.Service, v int64) func() error {
	return func() error {
		st, err := svc.Declarative().State(ctx, "by-customer", "whale", eventstore.AtVersion(v), nil)
		if err == nil && st.Version != v {
			err = fmt.Errorf("asked for version %d, got %d", v, st.Version)
		}
		return err
	}
}

// waitSnapshots waits until svc's snapshot writes have settled.
func waitSnapshots(svc *projections.Service) {
	for last := svc.Stats(); ; {
		time.Sleep(time.Second)
		now := svc.Stats()
		if now.SnapshotsSaved+now.SnapshotsDropped+now.SnapshotsFailed == last.SnapshotsSaved+last.SnapshotsDropped+last.SnapshotsFailed {
			return
		}
		last = now
	}
}

// p50 runs f n times after n/10 warm-up runs and returns the median.
func p50(n int, f func() error) (time.Duration, error) {
	for i := 0; i < n/10; i++ {
		if err := f(); err != nil {
			return 0, err
		}
	}
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2], nil
}

// load appends the order streams and the whale's stream with 8 appenders.
func load(ctx context.Context, store *eventstore.Store, c config, log *slog.Logger) error {
	jobs := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := appendOrder(ctx, store, i, c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := -1; i < c.orders; i++ {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
			if i%200 == 0 {
				log.Info("loading", "orders", i+1, "of", c.orders, "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	log.Info("loaded", "events", store.HeadPosition(), "took", time.Since(start).Round(time.Millisecond))
	return ctx.Err()
}

// appendOrder writes order i (-1 = the whale's) in appends of at most 1,000.
func appendOrder(ctx context.Context, store *eventstore.Store, i int, c config) error {
	stream, customer, n := fmt.Sprintf("order-%d", i), fmt.Sprintf("c-%d", i%500), c.per
	if i < 0 {
		stream, customer, n = "order-whale", "whale", c.whale
	}
	events := make([]eventstore.NewEvent, 0, n)
	created, _ := json.Marshal(map[string]any{"customerId": customer, "items": []map[string]any{{"sku": "A", "quantity": 1, "unitPriceCents": 100}}})
	events = append(events, eventstore.NewEvent{Type: "OrderCreated", Data: created})
	for k := 1; k < n; k++ {
		data := fmt.Sprintf(`{"sku":"S%d","quantity":%d,"unitPriceCents":%d}`, k%900, 1+k%5, 100+k%50)
		events = append(events, eventstore.NewEvent{Type: "OrderItemAdded", Data: json.RawMessage(data)})
	}
	for len(events) > 0 {
		k := min(len(events), eventstore.MaxEventsPerAppend)
		if _, err := store.Append(ctx, stream, eventstore.Any{}, events[:k]...); err != nil {
			return err
		}
		events = events[k:]
	}
	return nil
}

// cpuWait is how long the process's threads were runnable but waiting for a
// CPU (the second field of /proc/self/task/*/schedstat), or 0 where Linux's
// schedstat is not there. Threads that ended in between are not counted.
func cpuWait() time.Duration {
	tasks, _ := os.ReadDir("/proc/self/task")
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		var run, wait int64
		if _, err := fmt.Sscan(string(b), &run, &wait); err == nil {
			total += wait
		}
	}
	return time.Duration(total)
}
