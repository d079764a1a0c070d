// Command abusebench measures what the most expensive requests the default
// limits allow cost the server (issue 15, "Measure"), and how much they slow
// down everyone else.
//
// It builds the hindsight binary into a temporary directory (unless -bin
// names one) and starts `hindsight serve` on the embedded store there, with
// the default limits. It seeds one stream of 10,000 events. Then:
//
//  1. Cost: each request of the catalogue (requests.go: most fields, most
//     validation errors, most field errors, most aliases of full pages, the
//     largest answer, verify and state of a long stream, the deepest
//     nesting, the most tokens, the largest body, the largest append, and two
//     refused documents) is sent -requests times, one at a time, after a
//     warm-up of 3. Per request it reports the server's CPU time (user +
//     system, from /proc, over the whole run divided by the count) and the
//     bytes it allocated (go_memstats_alloc_bytes_total from /metrics, less
//     what a scrape itself allocates). Target: ≤ 50 ms CPU and ≤ 16 MiB.
//  2. Contention: the p99 latency of `{ headPosition }` from one client,
//     -simple requests one after another, first on an idle server, then
//     while -attackers clients send the catalogue's requests (all but the
//     append) in a loop. RSS is sampled every 50 ms. Targets: p99 under
//     attack ≤ 5× idle, RSS < 512 MiB.
//
// It prints a markdown report and exits 1 if a request got an answer other
// than the catalogue's; the targets are reported, not enforced.
//
// -transport ws or sse sends the attackers' requests over websockets or SSE
// instead (wsattack.go, sseattack.go); -trace saves a runtime trace and the allocations of the
// attacked measurement (trace.go).
//
//	go run ./cmd/abusebench [-requests 20] [-simple 400] [-attackers 8] [-exclude verify] [-transport ws] [-trace FILE]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

type config struct {
	bin       string
	requests  int
	simple    int
	attackers int
	exclude   string
	keep      bool
	trace     string // trace.go
	debugBase string
	transport string // wsattack.go
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o config
	fs := flag.NewFlagSet("abusebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "", "hindsight binary; empty = go build the module in the current directory")
	fs.IntVar(&o.requests, "requests", 20, "measured requests per catalogue entry, after a warm-up of 3")
	fs.IntVar(&o.simple, "simple", 400, "{ headPosition } requests per contention measurement")
	fs.IntVar(&o.attackers, "attackers", 8, "clients sending the catalogue's requests in a loop")
	fs.StringVar(&o.exclude, "exclude", "", "leave catalogue entries whose name contains this (or any of these, comma-separated) out of the contention loop (e.g. verify), to see what the rest cost")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (store, logs)")
	fs.StringVar(&o.transport, "transport", "post", "how the attackers send the catalogue: post, sse (sseattack.go) or ws (graphql-transport-ws, wsattack.go)")
	fs.StringVar(&o.trace, "trace", "", "save a runtime trace of the attacked { headPosition } measurement to this file (trace.go)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.requests < 1 || o.simple < 100 || o.attackers < 1 {
		fmt.Fprintln(stderr, "need -requests ≥ 1, -simple ≥ 100 and -attackers ≥ 1")
		return 2
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "abusebench:", err)
		return 1
	}
	return 0
}

// cost is what one catalogue entry cost per request.
type cost struct {
	name       string
	cpu        time.Duration
	alloc      float64
	latency    time.Duration // p50 as the client saw it
	bodyBytes  int
	replyBytes int
}

func bench(ctx context.Context, o config, stdout, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "abusebench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.bin
	if bin == "" {
		fmt.Fprintln(stderr, "building hindsight …")
		if bin, err = benchserver.Build(ctx, dir, stderr); err != nil {
			return err
		}
	}
	sup := &benchserver.Supervisor{}
	defer sup.StopAll()
	env := []string{"HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data"), "HINDSIGHT_LOG_LEVEL=warn"}
	if o.trace != "" {
		var debug string
		if debug, o.debugBase, err = debugEnv(); err != nil {
			return err
		}
		env = append(env, debug)
	}
	srv, err := sup.StartServer(ctx, bin, env,
		filepath.Join(dir, "server.log"), 2*time.Minute)
	if err != nil {
		return err
	}
	c := benchserver.NewClient(srv.Base, o.attackers+2)
	fmt.Fprintf(stderr, "seeding %d events …\n", bigEvents)
	for v := 0; v < bigEvents; v += 500 {
		evs := make([]any, 500)
		for i := range evs {
			evs[i] = map[string]any{"type": "Seeded", "data": map[string]any{"n": v + i, "note": "an event of the abuse benchmark"}}
		}
		if err := c.Do(ctx, `mutation($e: [NewEvent!]!) { appendToStream(streamId: "`+bigStream+`", events: $e) { lastPosition } }`,
			map[string]any{"e": evs}, nil); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}

	catalogue := attacks()
	var costs []cost
	for _, a := range catalogue {
		fmt.Fprintf(stderr, "measuring %s …\n", a.name)
		co, err := measureCost(ctx, c, srv, a, o.requests)
		if err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
		costs = append(costs, co)
	}

	fmt.Fprintln(stderr, "contention …")
	idle, err := simpleP99(ctx, c, o.simple)
	if err != nil {
		return err
	}
	rssBefore, _ := srv.Memory("VmRSS")
	attack, peakRSS, attacked, err := underAttack(ctx, c, srv, catalogue, o)
	if err != nil {
		return err
	}
	report(stdout, o, costs, idle, attack, rssBefore, peakRSS, attacked)
	return nil
}

// attackLoad is the load average when the attacked measurement ended.
var attackLoad string

// seq numbers the requests, for their unique operation names.
var seq atomic.Int64

func next() int { return int(seq.Add(1)) }

// post sends one request, rendered with the operation name n, and checks its
// answer against want.
func post(ctx context.Context, c *benchserver.Client, a attack, n int) (int, error) {
	return postBody(ctx, c, a, a.body(n))
}

func postBody(ctx context.Context, c *benchserver.Client, a attack, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var r struct {
		Errors []struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return len(b), fmt.Errorf("status %d, not a GraphQL response: %.300s", resp.StatusCode, b)
	}
	got := "ok"
	if len(r.Errors) > 0 {
		got = r.Errors[0].Extensions.Code
	}
	if got != a.want {
		return len(b), fmt.Errorf("got %s, want %s: status %d, %.300s", got, a.want, resp.StatusCode, b)
	}
	return len(b), nil
}

// scrapeAlloc reads the server's allocated bytes so far.
func scrapeAlloc(ctx context.Context, c *benchserver.Client) (float64, error) {
	m, err := c.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := m.Get("go_memstats_alloc_bytes_total")
	if !ok {
		return 0, errors.New("/metrics has no go_memstats_alloc_bytes_total")
	}
	return v, nil
}

func measureCost(ctx context.Context, c *benchserver.Client, srv *benchserver.Server, a attack, n int) (cost, error) {
	co := cost{name: a.name, bodyBytes: len(a.body(0))}
	for i := 0; i < 3; i++ {
		if _, err := post(ctx, c, a, next()); err != nil {
			return co, err
		}
	}
	// What a scrape allocates, to take off.
	s0, err := scrapeAlloc(ctx, c)
	if err != nil {
		return co, err
	}
	s1, err := scrapeAlloc(ctx, c)
	if err != nil {
		return co, err
	}
	scrape := s1 - s0
	cpu0, err := srv.CPU()
	if err != nil {
		return co, err
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		body := a.body(next()) // rendered before the clock starts
		start := time.Now()
		size, err := postBody(ctx, c, a, body)
		if err != nil {
			return co, err
		}
		lat[i], co.replyBytes = time.Since(start), size
	}
	cpu1, err := srv.CPU()
	if err != nil {
		return co, err
	}
	s2, err := scrapeAlloc(ctx, c)
	if err != nil {
		return co, err
	}
	co.cpu = (cpu1 - cpu0) / time.Duration(n)
	co.alloc = max(0, s2-s1-scrape) / float64(n)
	co.latency = benchserver.Percentile(lat, 50)
	return co, nil
}

// simpleP99 sends n { headPosition } one after another and returns the p99
// latency.
func simpleP99(ctx context.Context, c *benchserver.Client, n int) (time.Duration, error) {
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if err := c.Do(ctx, `{ headPosition }`, nil, nil); err != nil {
			return 0, err
		}
		lat[i] = time.Since(start)
	}
	return benchserver.Percentile(lat, 99), nil
}

// underAttack measures simpleP99 while o.attackers clients loop over the
// catalogue (writes left out), sampling the server's RSS. It returns the
// p99, the peak RSS and the number of attack requests answered.
func underAttack(ctx context.Context, c *benchserver.Client, srv *benchserver.Server, catalogue []attack, o config) (time.Duration, int64, int64, error) {
	var loop []attack
	for _, a := range catalogue {
		if !a.write && !excluded(a.name, o.exclude) {
			loop = append(loop, a)
		}
	}
	actx, cancel := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	for w := 0; w < o.attackers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send, err := attacker(actx, c, o.transport)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				return
			}
			for i := w; actx.Err() == nil; i++ {
				if err := send(loop[i%len(loop)], next()); err != nil {
					if actx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				answered.Add(1)
			}
		}()
	}
	var peak atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := srv.Memory("VmRSS"); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-actx.Done():
				return
			case <-t.C:
			}
		}
	}()
	time.Sleep(2 * time.Second) // let the attack reach full strength
	var traced func() error
	if o.trace != "" {
		traced = startTrace(ctx, o.debugBase, o.trace, 2*time.Second)
	}
	p99, err := simpleP99(ctx, c, o.simple)
	attackLoad = loadAverage()
	if traced != nil {
		if terr := traced(); err == nil {
			err = terr
		}
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	return p99, peak.Load(), answered.Load(), err
}

func report(w io.Writer, o config, costs []cost, idle, attack time.Duration, rssBefore, peakRSS, attacked int64) {
	const cpuTarget, allocTarget = 50 * time.Millisecond, 16 << 20
	fmt.Fprintf(w, "## Cost per request (default limits, %d requests each, one at a time)\n\n", o.requests)
	fmt.Fprintln(w, "| request | body | answer | server CPU | allocated | p50 latency | within 50 ms / 16 MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, co := range costs {
		ok := "yes"
		if co.cpu > cpuTarget || co.alloc > allocTarget {
			ok = "**no**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.1f ms | %s | %.1f ms | %s |\n", co.name, size(float64(co.bodyBytes)), size(float64(co.replyBytes)),
			float64(co.cpu)/1e6, size(co.alloc), float64(co.latency)/1e6, ok)
	}
	ratio := float64(attack) / float64(idle)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(w, "\n## Contention: %d attackers looping over the catalogue, one `{ headPosition }` client\n\n", o.attackers)
	if o.exclude != "" {
		fmt.Fprintf(w, "Left out of the loop: the requests named with %q.\n\n", o.exclude)
	}
	fmt.Fprintf(w, "The attackers send over %s.\n\n", o.transport)
	fmt.Fprintln(w, "| measure | value | target | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| `{ headPosition }` p99, idle | %.2f ms | | |\n", float64(idle)/1e6)
	fmt.Fprintf(w, "| `{ headPosition }` p99, under attack | %.2f ms | | |\n", float64(attack)/1e6)
	fmt.Fprintf(w, "| ratio | %.1f× | ≤ 5× | %s |\n", ratio, verdict(ratio <= 5))
	fmt.Fprintf(w, "| RSS before the attack | %s | | |\n", size(float64(rssBefore)))
	fmt.Fprintf(w, "| peak RSS under attack | %s | < 512 MiB | %s |\n", size(float64(peakRSS)), verdict(peakRSS < 512<<20))
	fmt.Fprintf(w, "| attack requests answered | %d | | |\n", attacked)
	fmt.Fprintf(w, "| load average (1, 5, 15 min) after the attack | %s | | |\n", attackLoad)
}

func size(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
