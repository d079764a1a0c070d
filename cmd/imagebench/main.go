// Command imagebench proves that hindsight's reads stay fast as the log grows
// (issue 9, "Prove it"): the server answers from its memory image, so a
// query at 200,000 events should cost about what it costs at 2,000, start-up
// should take at most 2× a raw driver read of the same log, and with a memory
// budget below the data the server still answers, from the store on a miss.
//
// It builds the hindsight binary into a temporary directory (unless -bin
// names one), starts the store as its own process (`hindsight devdb` on a
// free port, data in the temporary directory) and runs `hindsight serve`
// processes against it with HINDSIGHT_MONGODB_URI, so that the servers and
// the raw driver read the same store. Then:
//
//  1. Small phase: loads -small events (2,000) over HTTP GraphQL: orders
//     (createOrder, addOrderItem, removeOrderItem, placeOrder, payOrder,
//     shipOrder, cancelOrder; ending DRAFT, PLACED, PAID, SHIPPED or
//     CANCELLED, every 50th with 50 to 300 item changes) and generic streams
//     (appendToStream, 1 to 39 events per append, half of the appends on the
//     hottest 1% of the streams), interleaved at random. It restarts the
//     server and measures, over HTTP, -requests sequential requests of each
//     query after a warm-up of a tenth as many:
//     - order(id, at: {version})      a random order at a random version;
//     - stream(id).state(at: {time})  a random generic stream at a random time
//     within its life;
//     - orders(at: {time}, first: 50) a page at a random time of the log;
//     - orderStats(at: {time})        at a random time of the log;
//     - events(afterPosition, first: 50) from a random position in the
//     middle half of the log.
//     Arguments are drawn from what was loaded with a fixed seed. Every
//     answer is checked (no errors, and e.g. the order has the asked
//     version, the page has 50 events starting at the right position).
//  2. Large phase: loads up to -events events in all (200,000), on top of
//     the small phase: 2,000 orders in all (fewer when -events is below
//     20,000), the rest generic streams, with -clients concurrent HTTP
//     clients, printing progress.
//  3. Stops the server and runs `hindsight export` of the store; the size
//     of that JSON Lines file (one event per line with every stored field)
//     is the JSON size of the data. Then, on the same store process, the
//     raw read: a fresh mongo-driver/v2 client Finds every document of
//     hindsight.commits with the query the server uses to build its image,
//     decoding each into bson.Raw and counting events. Right after it, starts
//     the server and times process start → /readyz 200. Target: ≤ 2× the raw
//     read.
//  4. Measures the five queries again. Target: each p50 ≤ 2× its p50 in
//     the small phase.
//  5. Reads the server's VmRSS and its /metrics: hindsight_image_resident_bytes,
//     hindsight_image_resident_events, hindsight_image_hits_total and
//     hindsight_image_misses_total (n/a when the server lacks one), and
//     reports resident bytes / JSON bytes (target ≤ 3×).
//  6. Budget phase (unless -skip-budget): restarts the server with
//     HINDSIGHT_MEMORY_BUDGET at 25% of the resident bytes of step 5 (or
//     of the JSON size, if the server has no resident-bytes metric), times
//     start-up, measures the five queries again (-budget-requests each,
//     since every miss is a store read: a scan of the whole log on FerretDB)
//     and reports each one's hit rate (the growth of the hit and miss
//     counters over its requests).
//
// It prints markdown tables of all of it. It exits 1 if any request failed
// or any answer had GraphQL errors or was wrong; the targets are reported,
// not enforced. Child processes run in their own process groups and are
// stopped on exit and on Ctrl-C; the temporary directory (binary, store,
// logs) is removed unless -keep.
//
// Everything runs on one machine: the load and the measuring client compete
// with the server and the store for CPU, so the figures are upper bounds and
// noisy on a small machine. Run from the repository root:
//
//	go run ./cmd/imagebench                                   # 200,000 events: about 10 to 25 minutes here
//	go run ./cmd/imagebench -events 20000 -requests 100       # a few minutes
//
// It is a command rather than a Go benchmark so that `go test ./...` never
// pays for it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// The metrics the image reports (issue 9).
const (
	metricResidentBytes  = "hindsight_image_resident_bytes"
	metricResidentEvents = "hindsight_image_resident_events"
	metricHits           = "hindsight_image_hits_total"
	metricMisses         = "hindsight_image_misses_total"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	events, small int64
	requests      int
	budgetReqs    int
	clients       int
	bin           string
	keep          bool
	skipBudget    bool
	seed          uint64
	padEvery      int    // every Nth generic append has one 64 KiB event; 0 = none
	huge          int    // appends of one event near 4 MiB in the large phase
	roundTrip     bool   // export → import → export, byte for byte
	pgURL         string // run the store on FerretDB's PostgreSQL handler
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o config
	fs := flag.NewFlagSet("imagebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&o.events, "events", 200000, "events in the store for the large phase, the small phase's included")
	fs.Int64Var(&o.small, "small", 2000, "events in the store for the small phase")
	fs.IntVar(&o.requests, "requests", 300, "measured requests per query and phase, after a warm-up of a tenth as many")
	fs.IntVar(&o.budgetReqs, "budget-requests", 10, "measured requests per query in the budget phase: a miss is a store read, which FerretDB answers with a scan of the whole log (seconds at 200,000 events)")
	fs.IntVar(&o.clients, "clients", 24, "concurrent HTTP clients while loading")
	fs.StringVar(&o.bin, "bin", "", "hindsight binary; empty = go build the module in the current directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (store, export, logs)")
	fs.BoolVar(&o.skipBudget, "skip-budget", false, "skip the phase with a memory budget of 25% of the data")
	fs.Uint64Var(&o.seed, "seed", 9, "seed of the load plan and of the query arguments")
	fs.IntVar(&o.padEvery, "pad-every", 0, "every Nth generic append carries one event of 64 KiB (the size mix); 0 = none")
	fs.IntVar(&o.huge, "huge", 0, "appends of one event near the 4 MiB append limit in the large phase")
	fs.StringVar(&o.pgURL, "postgresql-url", "", "run the store (hindsight devdb) on FerretDB's PostgreSQL handler at this URL (see embedded/pgstore.sh) instead of SQLite")
	fs.BoolVar(&o.roundTrip, "round-trip", false, "after the large phase, import the export into a fresh database and export it again: the files must be byte-identical")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.small < 100 || o.events <= o.small || o.requests < 1 || o.budgetReqs < 1 || o.clients < 1 || o.padEvery < 0 || o.huge < 0 {
		fmt.Fprintln(stderr, "need -small ≥ 100, -events > -small, and positive -requests and -clients")
		return 2
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "imagebench:", err)
		return 1
	}
	return 0
}

// phase is one measured server: its queries and what it reported.
type phase struct {
	label     string
	events    int64 // in the store
	ready     time.Duration
	lat       []latency
	rss, hwm  int64
	metrics   benchserver.Metrics
	budget    int64 // HINDSIGHT_MEMORY_BUDGET; 0 = the default
	budgetWhy string
}

func (p *phase) metric(name string) (float64, bool) {
	if p == nil || p.metrics == nil {
		return 0, false
	}
	return p.metrics.Get(name)
}

// report is everything the tables show.
type report struct {
	o                    config
	smallLoad, largeLoad loadResult
	small, large, budget *phase
	raw                  rawRead
	jsonBytes            int64
	exportTook           time.Duration
	trip                 *roundTrip
	orders, streams      int
	serverLogs           []string
}

func bench(ctx context.Context, o config, stdout, stderr io.Writer) (err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	tmp, err := os.MkdirTemp("", "imagebench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s (store in data/, logs *.log, export.jsonl)", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	sup := &benchserver.Supervisor{}
	defer sup.StopAll()

	bin := o.bin
	if bin == "" {
		logf("building hindsight ...")
		if bin, err = benchserver.Build(ctx, tmp, stderr); err != nil {
			return err
		}
	}
	var storeEnv []string
	if o.pgURL != "" {
		storeEnv = append(storeEnv, "HINDSIGHT_POSTGRESQL_URL="+o.pgURL)
	}
	_, uri, err := sup.StartDevDB(ctx, bin, filepath.Join(tmp, "data"), filepath.Join(tmp, "devdb.log"), storeEnv...)
	if err != nil {
		return err
	}
	logf("store: hindsight devdb at %s (data in %s)", uri, filepath.Join(tmp, "data"))

	rep := &report{o: o}
	var anyErrors []string
	nServer := 0
	start := func(label string, extra ...string) (*benchserver.Server, error) {
		nServer++
		logPath := filepath.Join(tmp, fmt.Sprintf("server-%d-%s.log", nServer, label))
		rep.serverLogs = append(rep.serverLogs, logPath)
		env := append([]string{"HINDSIGHT_MONGODB_URI=" + uri, "HINDSIGHT_LOG_LEVEL=info"}, extra...)
		srv, err := sup.StartServer(ctx, bin, env, logPath, 30*time.Minute)
		if err != nil {
			return nil, err
		}
		logf("server %d (%s) ready in %v at %s", nServer, label, srv.Ready.Round(time.Millisecond), srv.Base)
		return srv, nil
	}
	stop := func(srv *benchserver.Server) error {
		if err := srv.Stop(60 * time.Second); err != nil {
			return fmt.Errorf("stopping the server: %w\n%s", err, srv.Tail(20))
		}
		return nil
	}
	// Scan the server logs for warnings and errors however the run ends.
	defer func() { printLogFindings(stdout, rep.serverLogs) }()

	rng := rand.New(rand.NewPCG(o.seed, 0))
	warm := max(10, o.requests/10)
	d := &dataset{}

	// Small phase.
	totalOrders := int(min(2000, max(1, o.events/10)))
	smallOrders := int(min(int64(totalOrders), max(1, o.small/20)))
	srv, err := start("load-small")
	if err != nil {
		return err
	}
	c := benchserver.NewClient(srv.Base, 2*o.clients)
	plan := planLoad("a", rng, 0, smallOrders, o.small, o.padEvery, 0)
	logf("small phase: loading %d events (%d orders, %d generic appends)", plan.events, len(plan.orders), len(plan.batches))
	l := &loader{c: c, clients: o.clients, log: stderr}
	if rep.smallLoad, err = l.run(ctx, plan, rng, d); err != nil {
		return err
	}
	if rep.smallLoad.errors > 0 {
		anyErrors = append(anyErrors, fmt.Sprintf("%d failed requests while loading the small phase", rep.smallLoad.errors))
	}
	if err := stop(srv); err != nil {
		return err
	}
	small := d.clone()
	if srv, err = start("small"); err != nil {
		return err
	}
	c = benchserver.NewClient(srv.Base, 2*o.clients)
	rep.small = &phase{label: "small", events: small.head, ready: srv.Ready}
	logf("small phase: measuring at %d events, %d orders, %d streams", small.head, len(small.orders), len(small.streams))
	if rep.small.lat, err = measure(ctx, c, small, o.requests, warm, o.seed, "small", stderr); err != nil {
		return err
	}
	if err := snapshot(ctx, c, srv, rep.small); err != nil {
		return err
	}

	// Large phase, on top of the small one.
	plan = planLoad("b", rng, smallOrders, totalOrders-smallOrders, o.events-d.head, o.padEvery, o.huge)
	logf("large phase: loading %d events (%d orders, %d generic appends) with %d clients", plan.events, len(plan.orders), len(plan.batches), o.clients)
	l = &loader{c: c, clients: o.clients, log: stderr}
	if rep.largeLoad, err = l.run(ctx, plan, rng, d); err != nil {
		return err
	}
	if rep.largeLoad.errors > 0 {
		anyErrors = append(anyErrors, fmt.Sprintf("%d failed requests while loading the large phase", rep.largeLoad.errors))
	}
	rep.orders, rep.streams = len(d.orders), len(d.streams)
	if err := stop(srv); err != nil {
		return err
	}

	// Restart: the JSON size, the raw read, then the server.
	logf("exporting the log for its JSON size ...")
	if rep.jsonBytes, rep.exportTook, err = exportSize(ctx, bin, uri, filepath.Join(tmp, "export.jsonl"), filepath.Join(tmp, "export.log")); err != nil {
		return err
	}
	logf("export: %s in %v", mib(rep.jsonBytes), rep.exportTook.Round(time.Millisecond))
	if o.roundTrip {
		logf("round trip: import into a fresh database, export again ...")
		if rep.trip, err = runRoundTrip(ctx, bin, uri, tmp, filepath.Join(tmp, "export.jsonl"), stderr); err != nil {
			return err
		}
		if !rep.trip.identical {
			anyErrors = append(anyErrors, "the export of the imported log differs from the original export")
		}
	}
	if rep.raw, err = readRaw(ctx, uri); err != nil {
		return fmt.Errorf("raw read: %w", err)
	}
	logf("raw driver read: %d commits, %d events, %s of BSON in %v", rep.raw.commits, rep.raw.events, mib(rep.raw.bytes), rep.raw.took.Round(time.Millisecond))
	if rep.raw.events != d.head {
		anyErrors = append(anyErrors, fmt.Sprintf("the raw read found %d events, the load reached position %d", rep.raw.events, d.head))
	}
	if srv, err = start("large"); err != nil {
		return err
	}
	c = benchserver.NewClient(srv.Base, 2*o.clients)
	rep.large = &phase{label: "large", events: d.head, ready: srv.Ready}
	logf("large phase: measuring at %d events, %d orders, %d streams", d.head, len(d.orders), len(d.streams))
	if rep.large.lat, err = measure(ctx, c, d, o.requests, warm, o.seed, "large", stderr); err != nil {
		return err
	}
	if err := snapshot(ctx, c, srv, rep.large); err != nil {
		return err
	}
	if err := stop(srv); err != nil {
		return err
	}

	// Budget phase.
	if !o.skipBudget {
		p := &phase{label: "budget", events: d.head}
		if rb, ok := rep.large.metric(metricResidentBytes); ok && rb > 0 {
			p.budget, p.budgetWhy = int64(rb/4), "25% of "+metricResidentBytes
		} else {
			p.budget, p.budgetWhy = rep.jsonBytes/4, "25% of the export's JSON size ("+metricResidentBytes+" is missing)"
		}
		p.budget = max(p.budget, 1)
		logf("budget phase: HINDSIGHT_MEMORY_BUDGET=%d (%s, %s)", p.budget, mib(p.budget), p.budgetWhy)
		if srv, err = start("budget", "HINDSIGHT_MEMORY_BUDGET="+strconv.FormatInt(p.budget, 10)); err != nil {
			return err
		}
		c = benchserver.NewClient(srv.Base, 2*o.clients)
		p.ready = srv.Ready
		if p.lat, err = measure(ctx, c, d, o.budgetReqs, max(1, o.budgetReqs/10), o.seed, "budget", stderr); err != nil {
			return err
		}
		if err := snapshot(ctx, c, srv, p); err != nil {
			return err
		}
		if err := stop(srv); err != nil {
			return err
		}
		rep.budget = p
	}

	printReport(stdout, rep)
	for _, p := range []*phase{rep.small, rep.large, rep.budget} {
		if p == nil {
			continue
		}
		for i, l := range p.lat {
			if l.errors > 0 {
				anyErrors = append(anyErrors, fmt.Sprintf("%s phase, %s: %d failed or wrong (%s)", p.label, queries[i].name, l.errors, l.firstErr))
			}
		}
	}
	if len(anyErrors) > 0 {
		return errors.New(strings.Join(anyErrors, "\n"))
	}
	return nil
}

// snapshot reads the server's memory and metrics into p.
func snapshot(ctx context.Context, c *benchserver.Client, srv *benchserver.Server, p *phase) error {
	var err error
	if p.rss, err = srv.Memory("VmRSS"); err != nil {
		return err
	}
	if p.hwm, err = srv.Memory("VmHWM"); err != nil {
		return err
	}
	p.metrics, err = c.Metrics(ctx)
	return err
}
