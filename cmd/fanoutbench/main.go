// Command fanoutbench measures how hindsight fans live events out to many
// websocket subscribers: the fan-out targets of issue 16 (at 100 events/s,
// every subscriber gets every event; p99 delivery ≤ 150 ms at 5,000
// subscribers and ≤ 250 ms at 10,000; server memory ≤ 30 KB and at most 2
// goroutines per subscriber).
//
// For each subscriber count it starts a fresh server on an empty embedded
// store: the hindsight binary, built into a temporary directory unless -bin
// names one, run with internal/benchserver in its own process group (stopped
// on exit and on Ctrl-C). It opens that many graphql-transport-ws
// connections, each with one `events` subscription starting at the current
// head (so, live), appends -rate events per second for -duration with HTTP
// POSTs of appendToStream, waits for every subscriber to reach the last
// position, and prints a table:
//
//   - delivery latency at p50 and p99 over every (subscriber, event) pair,
//     from the moment the append's POST was sent to the moment the subscriber
//     read the event, and from the event's recordedAt to that moment (same
//     machine, same clock);
//   - the server's resident memory (VmRSS of /proc/PID/status) before the
//     subscribers connect and once they all have received a first event, as
//     growth per subscriber, and its peak (VmHWM);
//   - missed events: positions from the subscription's start to the last
//     append that a subscriber had not received -drain after the last append
//     (positions are gap-free, so every one is due); this must be 0.
//     Duplicates and out-of-order deliveries are counted too;
//   - the server's goroutines per subscriber connection (from /metrics);
//   - the CPU the server and the bench used meanwhile, and the achieved
//     append rate: on a small machine the server may not get the CPU the
//     fan-out needs, and then appends slow down too.
//
// It exits 1 if an event was missed, duplicated or reordered, a subscription
// ended early or an append failed; the latency and memory targets are
// reported, not enforced.
//
// The client runs on the same machine as the server and competes with it for
// CPU, so latencies are upper bounds. Run from the repository root:
//
//	go run ./cmd/fanoutbench                        # 1,000 and 5,000 subscribers
//	go run ./cmd/fanoutbench -subscribers 200 -duration 3s
//
// To compare two builds in one run (each subscriber count on each binary in
// turn, so that they share the machine's load), e.g. the code before issue 16
// against the current one:
//
//	git archive 81917e6 | (mkdir -p /tmp/before && tar -x -C /tmp/before)
//	(cd /tmp/before && go build -o /tmp/hindsight-before .) && go build -o /tmp/hindsight-after .
//	go run ./cmd/fanoutbench -bin before=/tmp/hindsight-before,after=/tmp/hindsight-after -subscribers 5000,10000
//
// It is a command rather than a Go benchmark so that `go test ./...` never
// pays for it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	subscribers []int
	rate        int
	duration    time.Duration
	bin         string
	dialers     int
	drain       time.Duration
	profile     string // directory for the profiles (see the flag); empty = none
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("fanoutbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	subs := fs.String("subscribers", "1000,5000", "comma-separated subscriber counts; each runs on a fresh server")
	fs.IntVar(&o.rate, "rate", 100, "events appended per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to append")
	fs.StringVar(&o.bin, "bin", "", "hindsight binary, or several as NAME=PATH,NAME=PATH (e.g. before=/tmp/h-81917e6,after=/tmp/h-new) to compare them in one run, each subscriber count on each binary in turn; empty = go build the module in the current directory")
	fs.IntVar(&o.dialers, "dialers", 32, "websocket connections opened concurrently")
	fs.DurationVar(&o.drain, "drain", 60*time.Second, "how long to wait, after the last append, for every subscriber to catch up")
	fs.StringVar(&o.profile, "profile", "", "write the server's CPU profile of the append phase, its heap and goroutine profiles once connected, and this command's own CPU profile to this directory (cpu-N.pprof, heap-N.pprof, goroutine-N.pprof, bench-cpu-N.pprof)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(*subs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "-subscribers: %q is not a positive integer\n", s)
			return 2
		}
		o.subscribers = append(o.subscribers, n)
	}
	if o.rate < 1 || o.duration <= 0 || o.dialers < 1 {
		fmt.Fprintln(stderr, "-rate, -duration and -dialers must be positive")
		return 2
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "fanoutbench:", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	// Every subscriber is a socket here and one in the server (a child, which
	// inherits this limit).
	need := uint64(2*slices.Max(o.subscribers) + 1000)
	if err := raiseOpenFiles(need, stderr); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "fanoutbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	type binary struct{ name, path string }
	var bins []binary
	for _, b := range strings.Split(o.bin, ",") {
		name, path, ok := strings.Cut(b, "=")
		if !ok {
			name, path = filepath.Base(b), b
		}
		bins = append(bins, binary{name, path})
	}
	if o.bin == "" {
		fmt.Fprintln(stderr, "building hindsight ...")
		path, err := benchserver.Build(ctx, tmp, stderr)
		if err != nil {
			return err
		}
		bins = []binary{{"built", path}}
	}

	var results []result
	for i, n := range o.subscribers {
		// Each binary in turn at the same count, so that they share the
		// machine's load as far as possible.
		for j, b := range bins {
			r, err := benchOne(ctx, o, n, b.path, filepath.Join(tmp, fmt.Sprintf("%d-%d", i, j)), stderr)
			if err != nil {
				return fmt.Errorf("%s, %d subscribers: %w", b.name, n, err)
			}
			r.server = b.name
			results = append(results, r)
		}
	}
	printTable(stdout, o, results)
	for _, r := range results {
		if r.missed != 0 || r.disordered != 0 || r.ended != 0 || r.appendErrors != 0 {
			return fmt.Errorf("%d subscribers: %d missed, %d duplicate or out of order, %d subscriptions ended early, %d failed appends", r.subscribers, r.missed, r.disordered, r.ended, r.appendErrors)
		}
	}
	return nil
}

// result is one row of the table.
type result struct {
	server       string // which binary
	subscribers  int
	events       int     // appended in the timed phase
	rate         float64 // achieved, events/s
	connect      time.Duration
	sendP50      time.Duration
	sendP99      time.Duration
	sendMax      time.Duration
	recP50       time.Duration // recordedAt → receive
	recP99       time.Duration
	rssBefore    int64 // bytes
	rssConnected int64
	rssPeak      int64
	missed       int64
	disordered   int64
	ended        int
	endedBy      string
	appendErrors int
	appendP99    time.Duration
	load         string  // the machine's load averages at the end
	goroutines   float64 // the server's goroutines per subscriber connection (growth over subscribers)
	serverCPU    float64 // cores used by the server from the first append until every subscriber caught up
	benchCPU     float64 // cores used by this process (the subscribers and the writer) meanwhile
}

func (r result) perSubscriber() float64 {
	return float64(r.rssConnected-r.rssBefore) / float64(r.subscribers)
}

func printTable(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "\nfan-out: %d events/s for %v, one live `events` subscription per graphql-transport-ws connection\n\n", o.rate, o.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tsubscribers\tevents\trate/s\tconnect\tp50 send→recv\tp99 send→recv\tmax send→recv\tp50 recordedAt→recv\tp99 recordedAt→recv\tRSS before\tRSS connected\tRSS/subscriber\tpeak RSS\tgoroutines/conn\tmissed\tdup/out of order\tended early\tserver CPU\tbench CPU\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%v\t%v\t%v\t%v\t%v\t%v\t%s\t%s\t%.1f KB\t%s\t%.2f\t%d\t%d\t%d\t%.2f cores\t%.2f cores\t\n",
			r.server, r.subscribers, r.events, r.rate, r.connect.Round(time.Millisecond),
			ms(r.sendP50), ms(r.sendP99), ms(r.sendMax), ms(r.recP50), ms(r.recP99),
			mib(r.rssBefore), mib(r.rssConnected), r.perSubscriber()/1024, mib(r.rssPeak), r.goroutines,
			r.missed, r.disordered, r.ended, r.serverCPU, r.benchCPU)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntargets (issue 16): 0 missed, p99 ≤ 150 ms at ≤ 5,000 subscribers and ≤ 250 ms above, ≤ %d KB of server memory and ≤ %d goroutines per subscriber\n", targetKB, targetGoroutines)
	for _, r := range rs {
		var miss []string
		if r.missed != 0 || r.disordered != 0 || r.ended != 0 {
			miss = append(miss, "delivery")
		}
		if r.sendP99 > targetP99(r.subscribers) || r.sendP99 == 0 {
			miss = append(miss, "p99 latency")
		}
		if r.perSubscriber() > targetKB*1024 {
			miss = append(miss, "memory per subscriber")
		}
		if r.goroutines > targetGoroutines+0.05 {
			miss = append(miss, "goroutines per connection")
		}
		if r.rate < 0.95*float64(o.rate) {
			miss = append(miss, fmt.Sprintf("append rate (%.1f/s of %d/s)", r.rate, o.rate))
		}
		verdict := "all met"
		if len(miss) > 0 {
			verdict = "missed: " + strings.Join(miss, ", ")
		}
		fmt.Fprintf(w, "%s, %d subscribers: %s (load average %s)\n", r.server, r.subscribers, verdict, r.load)
		if r.ended > 0 {
			fmt.Fprintf(w, "%d subscribers: %d subscriptions ended early, e.g. %s\n", r.subscribers, r.ended, r.endedBy)
		}
		if r.appendErrors > 0 {
			fmt.Fprintf(w, "%d subscribers: %d appends failed\n", r.subscribers, r.appendErrors)
		}
	}
}

// The fan-out targets (issue 16).
const (
	targetKB         = 30
	targetGoroutines = 2
)

func targetP99(subscribers int) time.Duration {
	if subscribers <= 5000 {
		return 150 * time.Millisecond
	}
	return 250 * time.Millisecond
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func mib(b int64) string        { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// benchOne runs one subscriber count on a fresh server.
func benchOne(ctx context.Context, o options, n int, bin, dir string, stderr io.Writer) (result, error) {
	res := result{subscribers: n}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%d subscribers] %s\n", n, fmt.Sprintf(format, args...))
	}
	sup := &benchserver.Supervisor{}
	defer sup.StopAll()
	debugAddr := ""
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return res, err
		}
		addr, err := benchserver.FreeAddr()
		if err != nil {
			return res, err
		}
		debugAddr = addr
	}
	srv, err := startServer(ctx, sup, bin, dir, max(10000, 2*n), debugAddr)
	if err != nil {
		return res, err
	}
	wsURL := "ws" + strings.TrimPrefix(srv.Base, "http") + "/graphql"
	c := client{benchserver.NewClient(srv.Base, 128)}
	c.HTTP.Timeout = 60 * time.Second

	// Warm up: some appends and one subscriber from the start, so that what
	// is measured next is what subscribers cost, not first use.
	for i := 0; i < 100; i++ {
		if _, err := c.append(ctx, "warmup"); err != nil {
			return res, fmt.Errorf("warm-up append: %w", err)
		}
	}
	head, err := c.head(ctx)
	if err != nil {
		return res, err
	}
	warm, err := dialSubscriber(ctx, wsURL, 0, 0, false)
	if err != nil {
		return res, fmt.Errorf("warm-up subscriber: %w", err)
	}
	if err := waitAll(ctx, []*subscriber{warm}, head, 30*time.Second); err != nil {
		return res, fmt.Errorf("warm-up subscriber: %w", err)
	}
	warm.close()
	time.Sleep(2 * time.Second)
	if res.rssBefore, err = srv.Memory("VmRSS"); err != nil {
		return res, err
	}
	goroutinesBefore := 0.0
	if m, err := c.Metrics(ctx); err == nil {
		goroutinesBefore, _ = m.Get("go_goroutines")
	}
	logf("server RSS %s; connecting", mib(res.rssBefore))

	// Connect, each subscription live from the head.
	start := time.Now()
	subs := make([]*subscriber, n)
	sem := make(chan struct{}, o.dialers)
	var wg sync.WaitGroup
	var dialErr atomic.Pointer[error]
	for i := range subs {
		sem <- struct{}{}
		if dialErr.Load() != nil || ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := dialSubscriber(ctx, wsURL, head, int(o.duration*time.Duration(o.rate)/time.Second)+64, i == 0)
			if err != nil {
				err = fmt.Errorf("subscriber %d: %w", i, err)
				dialErr.CompareAndSwap(nil, &err)
				return
			}
			subs[i] = s
		}()
	}
	wg.Wait()
	defer func() {
		for _, s := range subs {
			if s != nil {
				s.close()
			}
		}
	}()
	if p := dialErr.Load(); p != nil {
		return res, *p
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// A first event proves every subscription is active.
	first, err := c.append(ctx, "bench-start")
	if err != nil {
		return res, err
	}
	if err := waitAll(ctx, subs, first.pos, 60*time.Second); err != nil {
		return res, fmt.Errorf("the first event: %w", err)
	}
	res.connect = time.Since(start)
	time.Sleep(time.Second)
	if res.rssConnected, err = srv.Memory("VmRSS"); err != nil {
		return res, err
	}
	logf("connected in %v; server RSS %s (%.1f KB per subscriber); appending %d events/s for %v",
		res.connect.Round(time.Millisecond), mib(res.rssConnected), res.perSubscriber()/1024, o.rate, o.duration)
	if m, err := c.Metrics(ctx); err == nil {
		if g, ok := m.Get("go_goroutines"); ok {
			res.goroutines = (g - goroutinesBefore) / float64(n)
		}
		// Where the memory is, per subscriber (the Go runtime's view).
		var parts []string
		for _, name := range []string{"go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes"} {
			if v, ok := m.Get(name); ok {
				parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimPrefix(name, "go_memstats_"), v/float64(n)))
			}
		}
		logf("per subscriber: %s", strings.Join(parts, ", "))
	}
	var profiled sync.WaitGroup
	if o.profile != "" {
		fetchProfile(ctx, debugAddr, "heap", filepath.Join(o.profile, fmt.Sprintf("heap-%d.pprof", n)), logf)
		fetchProfile(ctx, debugAddr, "goroutine", filepath.Join(o.profile, fmt.Sprintf("goroutine-%d.pprof", n)), logf)
		// The CPU profile covers the append phase, less a second at each end;
		// the bench's own (the subscribers' side) covers the same time.
		secs := max(1, int(o.duration/time.Second)-2)
		profiled.Add(1)
		go func() {
			defer profiled.Done()
			time.Sleep(time.Second)
			if f, err := os.Create(filepath.Join(o.profile, fmt.Sprintf("bench-cpu-%d.pprof", n))); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					defer func() { pprof.StopCPUProfile(); f.Close() }()
				}
			}
			fetchProfile(ctx, debugAddr, "profile?seconds="+strconv.Itoa(secs), filepath.Join(o.profile, fmt.Sprintf("cpu-%d.pprof", n)), logf)
		}()
	}
	defer profiled.Wait()

	// Append at the rate, one event per POST, each on its own goroutine so
	// that a slow append does not slow the rate.
	var (
		mu      sync.Mutex
		sent    = map[int64]int64{} // position → when its POST was sent (Unix ns)
		latency []time.Duration     // of the POSTs
		last    int64
	)
	interval := time.Second / time.Duration(o.rate)
	total := int(o.duration / interval)
	tick := time.NewTicker(interval)
	began := time.Now()
	serverCPU0, err := srv.CPU()
	if err != nil {
		return res, err
	}
	benchCPU0 := benchserver.SelfCPU()
	var appends sync.WaitGroup
	for i := 0; i < total && ctx.Err() == nil; i++ {
		appends.Add(1)
		go func() {
			defer appends.Done()
			t := time.Now()
			a, err := c.append(ctx, "bench-"+strconv.Itoa(i%16))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.appendErrors++
				if res.appendErrors == 1 {
					logf("append: %v", err)
				}
				return
			}
			sent[a.pos] = t.UnixNano()
			latency = append(latency, time.Since(t))
			last = max(last, a.pos)
		}()
		<-tick.C
	}
	tick.Stop()
	appends.Wait()
	res.events = len(sent)
	res.rate = float64(res.events) / time.Since(began).Seconds()
	res.appendP99 = benchserver.Percentile(latency, 99)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	logf("appended %d events (%.1f/s, POST p99 %v); waiting for subscribers to reach position %d", res.events, res.rate, ms(res.appendP99), last)
	if err := waitAll(ctx, subs, last, o.drain); err != nil {
		logf("%v", err)
	}
	wall := time.Since(began)
	serverCPU1, err := srv.CPU()
	if err != nil {
		return res, err
	}
	res.serverCPU = (serverCPU1 - serverCPU0).Seconds() / wall.Seconds()
	res.benchCPU = (benchserver.SelfCPU() - benchCPU0).Seconds() / wall.Seconds()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if res.rssPeak, err = srv.Memory("VmHWM"); err != nil {
		return res, err
	}
	for _, s := range subs {
		s.close()
	}

	// Tally. Positions head+1 .. last are due to every subscriber.
	recorded := subs[0].recordedAt // parsed by the first subscriber only; the same for all
	var send, rec []time.Duration
	for _, s := range subs {
		s.mu.Lock()
		if s.err != nil {
			res.ended++
			res.endedBy = s.err.Error()
		}
		res.disordered += s.disordered
		for p := head + 1; p <= last; p++ {
			i := p - head - 1
			if i >= int64(len(s.recv)) || s.recv[i] == 0 {
				res.missed++
				continue
			}
			if t, ok := sent[p]; ok {
				send = append(send, time.Duration(s.recv[i]-t))
			}
			if i < int64(len(recorded)) && recorded[i] != 0 {
				rec = append(rec, time.Duration(s.recv[i]-recorded[i]))
			}
		}
		s.mu.Unlock()
	}
	res.sendP50, res.sendP99, res.sendMax = benchserver.Percentile(send, 50), benchserver.Percentile(send, 99), benchserver.Percentile(send, 100)
	res.recP50, res.recP99 = benchserver.Percentile(rec, 50), benchserver.Percentile(rec, 99)
	logf("done: %d missed, p99 %v", res.missed, ms(res.sendP99))
	return res, nil
}

// startServer starts `hindsight serve` on an empty embedded store in dir
// (its log in dir/server.log) and waits for it to be ready.
func startServer(ctx context.Context, sup *benchserver.Supervisor, bin, dir string, maxConns int, debugAddr string) (*benchserver.Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return sup.StartServer(ctx, bin, []string{
		"HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data"),
		"HINDSIGHT_MAX_CONNECTIONS=" + strconv.Itoa(maxConns),
		// Every subscriber comes from this machine, which in auth mode
		// none is one principal (and one address); binaries that do not
		// know these settings ignore them.
		"HINDSIGHT_MAX_CONNECTIONS_PER_PRINCIPAL=" + strconv.Itoa(maxConns),
		"HINDSIGHT_MAX_SUBSCRIPTIONS_PER_PRINCIPAL=" + strconv.Itoa(maxConns),
		"HINDSIGHT_MAX_PENDING_PER_ADDR=" + strconv.Itoa(maxConns),
		"HINDSIGHT_LOG_LEVEL=warn",
		"HINDSIGHT_DEBUG_ADDR=" + debugAddr,
	}, filepath.Join(dir, "server.log"), 90*time.Second)
}

// fetchProfile saves the server's profile (a path under /debug/pprof/) to
// file; it logs rather than fails, as a profile is a by-product.
func fetchProfile(ctx context.Context, debugAddr, path, file string, logf func(string, ...any)) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+debugAddr+"/debug/pprof/"+path, nil)
	if err != nil {
		logf("profile %s: %v", path, err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("profile %s: %v", path, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err == nil {
		err = os.WriteFile(file, b, 0o644)
	}
	if err != nil {
		logf("profile %s: %v", path, err)
		return
	}
	logf("wrote %s", file)
}

// client makes the bench's GraphQL requests over HTTP.
type client struct{ *benchserver.Client }

type appended struct{ pos int64 }

func (c *client) append(ctx context.Context, stream string) (appended, error) {
	var r struct {
		AppendToStream struct{ FirstPosition string }
	}
	err := c.Do(ctx, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "Benched", data: {}}]) { firstPosition } }`,
		map[string]any{"s": stream}, &r)
	if err != nil {
		return appended{}, err
	}
	p, err := strconv.ParseInt(r.AppendToStream.FirstPosition, 10, 64)
	return appended{p}, err
}

func (c *client) head(ctx context.Context) (int64, error) {
	var r struct{ HeadPosition string }
	if err := c.Do(ctx, `{ headPosition }`, nil, &r); err != nil {
		return 0, err
	}
	return strconv.ParseInt(r.HeadPosition, 10, 64)
}

// subscriber is one graphql-transport-ws connection with one subscription to
// events after a position. Its reader records when each position arrived.
// It parses only the position (and, for one subscriber, recordedAt) out of
// each message, without decoding JSON, to leave the CPU to the server.
type subscriber struct {
	conn            *rawConn
	cancel          context.CancelFunc
	after           int64
	parseRecordedAt bool
	done            chan struct{}
	last            atomic.Int64 // highest position received

	mu         sync.Mutex
	recv       []int64 // Unix ns when position after+1+i arrived; 0 = not (yet)
	recordedAt []int64 // Unix ns of the event's recordedAt, if parseRecordedAt
	disordered int64   // duplicates and positions not above the previous one
	err        error   // why the subscription ended, if it did
}

const subscription = `subscription($p: Position) { events(afterPosition: $p) { position recordedAt } }`

// dialSubscriber connects and subscribes to the events after position after;
// expect sizes its record. parseRecordedAt makes it record each event's
// recordedAt as well.
func dialSubscriber(ctx context.Context, url string, after int64, expect int, parseRecordedAt bool) (*subscriber, error) {
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := dialRaw(dctx, url, "graphql-transport-ws")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*subscriber, error) {
		conn.close()
		return nil, err
	}
	if err := conn.writeText([]byte(`{"type":"connection_init"}`)); err != nil {
		return fail(err)
	}
	for {
		b, err := conn.next(nil)
		if err != nil {
			return fail(fmt.Errorf("waiting for connection_ack: %w", err))
		}
		if bytes.Contains(b, []byte(`"connection_ack"`)) {
			break
		}
		if !bytes.Contains(b, []byte(`"ping"`)) && !bytes.Contains(b, []byte(`"pong"`)) {
			return fail(fmt.Errorf("waiting for connection_ack: got %s", b))
		}
	}
	sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": subscription, "variables": map[string]any{"p": strconv.FormatInt(after, 10)},
	}})
	if err := conn.writeText(sub); err != nil {
		return fail(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	s := &subscriber{conn: conn, cancel: rcancel, after: after, parseRecordedAt: parseRecordedAt,
		done: make(chan struct{}), recv: make([]int64, 0, expect)}
	s.last.Store(after)
	go s.read(rctx)
	return s, nil
}

var (
	positionKey   = []byte(`"position":"`)
	recordedAtKey = []byte(`"recordedAt":"`)
)

// read records the events as they arrive. It is the bench's hot loop, run
// for every subscriber and every event on the machine the server runs on, so
// it allocates nothing per message: one buffer per subscriber, frames read
// straight from the connection (rawConn; close unblocks it by closing the
// connection) and a position parsed in place.
func (s *subscriber) read(ctx context.Context) {
	defer close(s.done)
	buf := make([]byte, 0, 512)
	var now int64
	for {
		// Messages that arrived in one read share its time: the clock
		// is read only when the next frame needs the network.
		fresh := s.conn.br.Buffered() == 0
		b, err := s.next(buf[:0])
		if fresh || now == 0 {
			now = time.Now().UnixNano()
		}
		if err != nil {
			if ctx.Err() == nil {
				s.fail(err)
			}
			return
		}
		buf = b[:0]
		if pos, ok := field(b, positionKey); ok && !bytes.Contains(b, []byte(`"errors"`)) {
			p, ok := parsePosition(pos)
			if !ok {
				s.fail(fmt.Errorf("position in %s", b))
				return
			}
			s.got(p, now, b)
			continue
		}
		var m struct{ Type string }
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case "ping":
			if err := s.conn.writeText([]byte(`{"type":"pong"}`)); err != nil && ctx.Err() == nil {
				s.fail(err)
				return
			}
		case "pong":
		default:
			s.fail(fmt.Errorf("unexpected message %s", b))
			return
		}
	}
}

// next reads one message, appending it to buf.
func (s *subscriber) next(buf []byte) ([]byte, error) { return s.conn.next(buf) }

// parsePosition parses a decimal position without allocating.
func parsePosition(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var p int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		p = p*10 + int64(c-'0')
	}
	return p, true
}

func (s *subscriber) got(p, now int64, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := p - s.after - 1
	if i < 0 || p <= s.last.Load() {
		s.disordered++
		return
	}
	for int64(len(s.recv)) <= i {
		s.recv = append(s.recv, 0)
	}
	s.recv[i] = now
	if s.parseRecordedAt {
		if ts, ok := field(msg, recordedAtKey); ok {
			if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
				for int64(len(s.recordedAt)) <= i {
					s.recordedAt = append(s.recordedAt, 0)
				}
				s.recordedAt[i] = t.UnixNano()
			}
		}
	}
	s.last.Store(p)
}

func (s *subscriber) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *subscriber) close() {
	s.cancel()
	s.conn.close()
	<-s.done
}

// field returns the string value after key in a JSON message, without
// decoding it.
func field(b, key []byte) ([]byte, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, false
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// waitAll waits until every subscriber has received position p.
func waitAll(ctx context.Context, subs []*subscriber, p int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		behind, ended := 0, 0
		var why error
		for _, s := range subs {
			if s.last.Load() >= p {
				continue
			}
			select {
			case <-s.done:
				ended++
				s.mu.Lock()
				why = s.err
				s.mu.Unlock()
			default:
				behind++
			}
		}
		if behind == 0 && ended == 0 {
			return nil
		}
		if behind == 0 || time.Now().After(deadline) {
			return fmt.Errorf("position %d: %d subscribers still behind after %v, %d ended (%v)", p, behind, timeout, ended, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
