// Command abusebench measures what the most expensive requests the default
// limits allow cost the server (issue 15, "Measure"), and how much they slow
// down everyone else.
//
// It builds the hindsight binary into a temporary directory (unless -bin
// names one) and starts `hindsight serve` with the default limits, on a
// store of its own, seeded with one stream of 10,000 events. Where the store
// runs is -store:
//
//   - separate (first, and what the target is judged on): the store is
//     `hindsight devdb`, another process, and the server reaches it with
//     HINDSIGHT_MONGODB_URI, as it would a real MongoDB. The CPU and
//     allocation are then the server's alone; the store's CPU is shown
//     beside them.
//   - embedded: FerretDB inside the server's process, as `go run .` runs it.
//     Its scans (every read by stream scans the collection) and encodings
//     count as the server's, so these figures say what the embedded
//     default costs, not what Hindsight's code does.
//   - both (the default): separate, then embedded for reference.
//
// -baseline BIN measures another binary (e.g. one built from main) the same
// way first, in the same run, and prints this build's figures as ratios of
// it.
//
//  1. Cost: each request of the catalogue (requests.go: most fields, most
//     validation errors, most field errors, most aliases of full pages, the
//     largest answer, verify and state of a long stream, the deepest
//     nesting, the most tokens, the largest body, the largest appends (one
//     event of 4 MiB, of 3 MiB, 1,000 events of 4 KiB) and two refused
//     documents) is sent -requests times, one at a time, after a
//     warm-up of 3. Per request it reports the server's CPU time and the
//     bytes it allocated, both read around the whole window (see
//     measureCost), less the server's background rate measured idle
//     beforehand. Target: ≤ 50 ms CPU and ≤ 16 MiB.
//  2. Contention (with -bin, on the store -contention names, embedded by
//     default as the figures were measured; before the cost
//     phase, whose appends would stay in the memory image and in the
//     RSS): the p99 latency of `{ headPosition }` from one client,
//     -simple requests one after another (from a process of its own,
//     probe.go), first on an idle server, then
//     while -attackers clients send the catalogue's requests (all but the
//     appends) in a loop. RSS is sampled every 50 ms. Targets: p99 under
//     attack ≤ 5× idle, RSS < 512 MiB.
//
// It prints a markdown report and exits 1 if a request got an answer other
// than the catalogue's; the targets are reported, not enforced.
//
// -transport ws or sse sends the attackers' requests over websockets or SSE
// instead (wsattack.go, sseattack.go); -trace saves a runtime trace and the
// allocations of the attacked measurement (trace.go). -nice-clients runs
// the attackers in a process of their own and the separate store at nice
// 19, as if they ran on other machines (nice.go): a second figure beside
// the default one, never in its place. -probe-query measures another cheap
// query than `{ headPosition }`, and -writes N appends N small events a
// second meanwhile (writer.go), to see what heavy reads at a low priority
// cost reads and appends that wait for the store's locks.
//
//	go run ./cmd/abusebench [-store both] [-baseline BIN] [-requests 20] [-only NAME] [-contention embedded|separate|off]
//	                        [-simple 400] [-attackers 8] [-exclude verify] [-transport ws] [-trace FILE] [-nice-clients]
//	                        [-probe-query QUERY] [-writes N]
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
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

type config struct {
	bin        string
	baseline   string
	store      string
	requests   int
	simple     int
	attackers  int
	exclude    string
	only       string
	contention string
	keep       bool
	trace      string // trace.go
	debugBase  string
	transport  string // wsattack.go
	probe      string // probe.go
	nice       bool   // nice.go
	probeQuery string // probe.go
	writes     int    // appends per second during the contention phase (writer.go)
}

// storeMode is where the store runs in a measurement.
type storeMode string

const (
	// storeSeparate runs the store as `hindsight devdb`, another process,
	// and points the server at it with HINDSIGHT_MONGODB_URI: the server's
	// CPU and allocation are then its own, as with a real MongoDB.
	storeSeparate storeMode = "server-only"
	// storeEmbedded runs FerretDB inside the server's process, as `go run .`
	// does: its scans and encodings count as the server's.
	storeEmbedded storeMode = "embedded"
)

func main() {
	if spec := os.Getenv(probeEnv); spec != "" {
		os.Exit(probeMain(spec))
	}
	if spec := os.Getenv(attackEnv); spec != "" {
		os.Exit(attackMain(spec))
	}
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
	fs.StringVar(&o.baseline, "baseline", "", "another hindsight binary (e.g. built from main) to measure the same way first, for before/after ratios")
	fs.StringVar(&o.store, "store", "both", "where the store runs: separate (hindsight devdb, another process: the server's own cost), embedded (in the server's process, as go run . does), or both (separate, then embedded for reference)")
	fs.IntVar(&o.requests, "requests", 20, "measured requests per catalogue entry, after a warm-up of 3")
	fs.IntVar(&o.simple, "simple", 400, "{ headPosition } requests per contention measurement")
	fs.IntVar(&o.attackers, "attackers", 8, "clients sending the catalogue's requests in a loop")
	fs.StringVar(&o.exclude, "exclude", "", "leave catalogue entries whose name contains this (or any of these, comma-separated) out of the contention loop (e.g. verify), to see what the rest cost")
	fs.StringVar(&o.only, "only", "", "measure the cost of only the catalogue entries whose name matches this regular expression")
	fs.StringVar(&o.contention, "contention", "embedded", "the store to measure the contention on, with -bin: embedded (as go run . runs), separate, or off")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (store, logs)")
	fs.StringVar(&o.transport, "transport", "post", "how the attackers send the catalogue: post, sse (sseattack.go) or ws (graphql-transport-ws, wsattack.go)")
	fs.StringVar(&o.trace, "trace", "", "save a runtime trace of the attacked { headPosition } measurement to this file (trace.go)")
	fs.StringVar(&o.probe, "probe", "process", "where the { headPosition } client runs: process (a process of its own, probe.go) or inline (among the attackers, in this process)")
	fs.StringVar(&o.probeQuery, "probe-query", defaultProbe, "the cheap query whose p99 the contention phase measures")
	fs.IntVar(&o.writes, "writes", 0, "appends of one small event per second while the contention phase measures, idle and under attack (writer.go)")
	fs.BoolVar(&o.nice, "nice-clients", false, "run the attackers in a process of their own and the separate store at nice 19, as if they were other machines (nice.go); the default run, all at nice 0, is the one the target is judged on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.nice && o.probe != "process" {
		fmt.Fprintln(stderr, "-nice-clients needs -probe process: the probe must not share the attackers' priority")
		return 2
	}
	if o.probe != "process" && o.probe != "inline" {
		fmt.Fprintf(stderr, "-probe %q: want process or inline\n", o.probe)
		return 2
	}
	if o.requests < 1 || o.simple < 100 || o.attackers < 1 {
		fmt.Fprintln(stderr, "need -requests ≥ 1, -simple ≥ 100 and -attackers ≥ 1")
		return 2
	}
	modes, err := storeModes(o.store)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if o.contention != "off" {
		cm, err := storeModes(o.contention)
		if err != nil || len(cm) != 1 || !slices.Contains(modes, cm[0]) {
			fmt.Fprintf(stderr, "-contention %q: want off, or a store that -store %s measures\n", o.contention, o.store)
			return 2
		}
	}
	if err := bench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "abusebench:", err)
		return 1
	}
	return 0
}

func mustMode(s string) storeMode {
	m, err := storeModes(s)
	if err != nil || len(m) != 1 {
		panic("abusebench: not one store: " + s)
	}
	return m[0]
}

func storeModes(s string) ([]storeMode, error) {
	switch s {
	case "separate":
		return []storeMode{storeSeparate}, nil
	case "embedded":
		return []storeMode{storeEmbedded}, nil
	case "both":
		return []storeMode{storeSeparate, storeEmbedded}, nil
	}
	return nil, fmt.Errorf("-store %q: want separate, embedded or both", s)
}

// run is one measured configuration: a binary on a store, and what each
// catalogue entry cost there.
type measured struct {
	label string // "baseline" or "this build"
	store storeMode
	idle  rate
	costs []cost
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
	modes, _ := storeModes(o.store)
	type binary struct{ label, path string }
	bins := []binary{{"this build", bin}}
	if o.baseline != "" {
		bins = []binary{{"baseline", o.baseline}, bins[0]}
	}
	only, err := regexp.Compile(o.only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	var catalogue []attack
	for _, a := range attacks() {
		if only.MatchString(a.name) {
			catalogue = append(catalogue, a)
		}
	}
	var runs []measured
	var cont *contention
	for i, b := range bins {
		for j, mode := range modes {
			m := measured{label: b.label, store: mode}
			contend := i == len(bins)-1 && o.contention != "off" && modes[j] == mustMode(o.contention)
			err := func() error {
				sup := &benchserver.Supervisor{}
				defer sup.StopAll()
				var env []string
				if contend && o.trace != "" {
					debug, base, err := debugEnv()
					if err != nil {
						return err
					}
					env, o.debugBase = append(env, debug), base
				}
				t, err := startTarget(ctx, sup, b.path, mode, filepath.Join(dir, fmt.Sprintf("run%d%d", i, j)), o.attackers+2, env, stderr)
				if err != nil {
					return err
				}
				if contend && o.nice && t.devdb != nil {
					if err := reniceProcess(t.devdb.Cmd.Process.Pid); err != nil {
						return err
					}
				}
				m.idle = t.idle
				// Contention first: the catalogue's appends leave hundreds
				// of MiB of events in the memory image, which would count
				// in the RSS under attack.
				if contend {
					fmt.Fprintf(stderr, "%s, %s: contention …\n", b.label, mode)
					if cont, err = measureContention(ctx, t, attacks(), o); err != nil {
						return fmt.Errorf("contention: %w", err)
					}
				}
				for _, a := range catalogue {
					fmt.Fprintf(stderr, "%s, %s: measuring %s …\n", b.label, mode, a.name)
					co, err := measureCost(ctx, t, a, o.requests)
					if err != nil {
						return fmt.Errorf("%s: %w", a.name, err)
					}
					m.costs = append(m.costs, co)
				}
				return nil
			}()
			if err != nil {
				return fmt.Errorf("%s, %s: %w", b.label, mode, err)
			}
			runs = append(runs, m)
		}
	}
	report(stdout, o, runs, cont)
	return nil
}

// startTarget starts a server (and, for storeSeparate, its store) in dir,
// with extraEnv, seeds the catalogue's stream and measures its idle rate.
func startTarget(ctx context.Context, sup *benchserver.Supervisor, bin string, mode storeMode, dir string, conns int, extraEnv []string, stderr io.Writer) (*target, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t := &target{bin: bin, store: mode}
	env := append([]string{"HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data"), "HINDSIGHT_LOG_LEVEL=warn"}, extraEnv...)
	if mode == storeSeparate {
		p, uri, err := sup.StartDevDB(ctx, bin, filepath.Join(dir, "store"), filepath.Join(dir, "devdb.log"))
		if err != nil {
			return nil, err
		}
		t.devdb = p
		env = append(env, "HINDSIGHT_MONGODB_URI="+uri)
	}
	srv, err := sup.StartServer(ctx, bin, env, filepath.Join(dir, "server.log"), 2*time.Minute)
	if err != nil {
		return nil, err
	}
	t.srv, t.c = srv, benchserver.NewClient(srv.Base, conns)
	fmt.Fprintf(stderr, "%s: seeding %d events …\n", mode, bigEvents)
	for v := 0; v < bigEvents; v += 500 {
		evs := make([]any, 500)
		for i := range evs {
			evs[i] = map[string]any{"type": "Seeded", "data": map[string]any{"n": v + i, "note": "an event of the abuse benchmark"}}
		}
		if err := t.c.Do(ctx, `mutation($e: [NewEvent!]!) { appendToStream(streamId: "`+bigStream+`", events: $e) { lastPosition } }`,
			map[string]any{"e": evs}, nil); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	pad := strings.Repeat("x", largeBytes-16)
	for v := 0; v < largeEvents; v += 60 { // 60 events of 64 KiB: within the 4 MiB of an append
		evs := make([]any, min(60, largeEvents-v))
		for i := range evs {
			evs[i] = map[string]any{"type": "Large", "data": map[string]any{"pad": pad}}
		}
		if err := t.c.Do(ctx, `mutation($e: [NewEvent!]!) { appendToStream(streamId: "`+largeStream+`", events: $e) { lastPosition } }`,
			map[string]any{"e": evs}, nil); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	time.Sleep(time.Second) // let the seeding's garbage be collected and the tailer settle
	return t, t.measureIdle(ctx, 3*time.Second)
}

// contention is what the contention phase measured.
type contention struct {
	store                   storeMode
	idle, attack            time.Duration
	rssBefore, peakRSS, got int64
}

func measureContention(ctx context.Context, t *target, catalogue []attack, o config) (*contention, error) {
	stopWriter := startWriter(ctx, t.c, o.writes)
	idle, err := simpleP99(ctx, t.c, o.simple, o, "")
	if err != nil {
		return nil, errors.Join(err, stopWriter())
	}
	c := &contention{store: t.store, idle: idle}
	c.rssBefore, _ = t.srv.Memory("VmRSS")
	c.attack, c.peakRSS, c.got, err = underAttack(ctx, t.c, t.srv, catalogue, o)
	return c, errors.Join(err, stopWriter())
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
	got, err := outcome(b)
	if err != nil {
		return len(b), fmt.Errorf("status %d, not a GraphQL response: %.300s", resp.StatusCode, b)
	}
	if got != a.want {
		return len(b), fmt.Errorf("got %s, want %s: status %d, %.300s", got, a.want, resp.StatusCode, b)
	}
	return len(b), nil
}

// underAttack measures simpleP99 while o.attackers clients loop over the
// catalogue (writes left out), sampling the server's RSS. It returns the
// p99, the peak RSS and the number of attack requests answered. With
// o.nice the attackers run in a process of their own at nice 19 (nice.go).
func underAttack(ctx context.Context, c *benchserver.Client, srv *benchserver.Server, catalogue []attack, o config) (time.Duration, int64, int64, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stopAttack func() (int64, error)
	if o.nice {
		var err error
		stopAttack, err = niceAttackers(actx, attackSpec{base: c.Base, attackers: o.attackers, transport: o.transport, exclude: o.exclude})
		if err != nil {
			return 0, 0, 0, err
		}
	} else {
		done := make(chan struct{})
		var (
			answered int64
			err      error
		)
		go func() {
			defer close(done)
			answered, err = attackLoop(actx, c, contentionLoop(catalogue, o.exclude), o.attackers, o.transport)
		}()
		stopAttack = func() (int64, error) {
			cancel()
			<-done
			return answered, err
		}
	}
	var peak atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
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
	var probeLog string
	if o.trace != "" {
		probeLog = o.trace + ".probe"
	}
	p99, err := simpleP99(ctx, c, o.simple, o, probeLog)
	attackLoad = loadAverage()
	if traced != nil {
		if terr := traced(); err == nil {
			err = terr
		}
	}
	answered, aerr := stopAttack()
	cancel()
	<-sampled
	if err == nil {
		err = aerr
	}
	return p99, peak.Load(), answered, err
}

// outcome is what a GraphQL response body says happened, in the terms of
// attack.want: "ok", or the extensions.code of its first error.
func outcome(body []byte) (string, error) {
	var r struct {
		Errors []struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", err
	}
	if len(r.Errors) > 0 {
		return r.Errors[0].Extensions.Code, nil
	}
	return "ok", nil
}
