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
	defaultProbe  = `{ headPosition }`
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
	p99, err := inlineP99(context.Background(), benchserver.NewClient(base, 1), n, query)
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
func simpleP99(ctx context.Context, c *benchserver.Client, n int, o config) (time.Duration, error) {
	if o.probe == "inline" {
		return inlineP99(ctx, c, n, o.probeQuery)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), probeEnv+"="+c.Base+" "+strconv.Itoa(n), probeQueryEnv+"="+o.probeQuery)
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
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if err := c.Do(ctx, query, nil, nil); err != nil {
			return 0, err
		}
		lat[i] = time.Since(start)
	}
	return benchserver.Percentile(lat, 99), nil
}
