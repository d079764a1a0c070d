package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// The `{ headPosition }` client runs, by default, in a process of its own:
// this binary again, started with probeEnv set. In the bench's own process
// its goroutine waited for one of the runtime's Ps behind the attackers'
// work in the same process (reading and decoding answers of up to 170 KiB),
// so the client's scheduling was counted as the server's latency. A process
// of its own sleeps between requests, and the kernel runs a woken sleeper
// promptly. -probe inline measures in the bench's process, as before.
const (
	probeEnv      = "ABUSEBENCH_PROBE"
	probeQueryEnv = "ABUSEBENCH_PROBE_QUERY" // -probe-query
	// probeLogEnv names a file the probe writes each request's start (on
	// the monotonic clock, which a runtime trace's clock snapshots share)
	// and latency to, in nanoseconds: -trace's FILE.probe, to find the
	// slowest requests in the server's trace (cmd/abusebench/traceprobe).
	probeLogEnv  = "ABUSEBENCH_PROBE_LOG"
	defaultProbe = `{ headPosition }`
)

// probeMain is main for the probe process: it sends n `{ headPosition }`
// to base one after another and prints the p99 latency in nanoseconds.
func probeMain(spec string) int {
	base, n, err := parseProbe(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "abusebench probe:", err)
		return 2
	}
	query := os.Getenv(probeQueryEnv)
	if query == "" {
		query = defaultProbe
	}
	p99, lat, err := probeRequests(context.Background(), benchserver.NewClient(base, 1), n, query)
	if err == nil {
		err = writeProbeLog(os.Getenv(probeLogEnv), lat)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "abusebench probe:", err)
		return 1
	}
	fmt.Println(int64(p99))
	return 0
}

func parseProbe(spec string) (string, int, error) {
	base, count, ok := strings.Cut(spec, " ")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 {
		return "", 0, fmt.Errorf("%s=%q: want \"BASE N\"", probeEnv, spec)
	}
	return base, n, nil
}

// simpleP99 measures the p99 of n of o's probe query (`{ headPosition }`
// unless -probe-query) from a probe process, or inline when o.probe says so.
// A probe process writes its requests to log, unless it is empty
// (probeLogEnv).
func simpleP99(ctx context.Context, c *benchserver.Client, n int, o config, log string) (time.Duration, error) {
	if o.probe == "inline" {
		return inlineP99(ctx, c, n, o.probeQuery)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), probeEnv+"="+c.Base+" "+strconv.Itoa(n), probeQueryEnv+"="+o.probeQuery)
	if log != "" {
		cmd.Env = append(cmd.Env, probeLogEnv+"="+log)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, errors.Join(err, errors.New(strings.TrimSpace(stderr.String())))
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("probe printed %q: %w", out, err)
	}
	return time.Duration(ns), nil
}

// inlineP99 sends n query one after another from this process and returns
// the p99 latency.
func inlineP99(ctx context.Context, c *benchserver.Client, n int, query string) (time.Duration, error) {
	p99, _, err := probeRequests(ctx, c, n, query)
	return p99, err
}

// probeRequest is one request of the probe: when it started, on the
// monotonic clock, and how long it took.
type probeRequest struct{ start, latency time.Duration }

// probeRequests sends n query one after another and returns the p99
// latency and every request.
func probeRequests(ctx context.Context, c *benchserver.Client, n int, query string) (time.Duration, []probeRequest, error) {
	reqs := make([]probeRequest, n)
	lat := make([]time.Duration, n)
	for i := range lat {
		mono := monotonic()
		start := time.Now()
		if err := c.Do(ctx, query, nil, nil); err != nil {
			return 0, nil, err
		}
		lat[i] = time.Since(start)
		reqs[i] = probeRequest{mono, lat[i]}
	}
	return benchserver.Percentile(lat, 99), reqs, nil
}

// writeProbeLog writes reqs to path, one "start latency" line each, unless
// path is empty.
func writeProbeLog(path string, reqs []probeRequest) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "%d %d\n", r.start, r.latency)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
