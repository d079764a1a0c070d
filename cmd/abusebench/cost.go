package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// target is one server under measurement, seeded with the catalogue's
// stream.
type target struct {
	bin   string
	store storeMode
	srv   *benchserver.Server
	// devdb is the store's own process, when it runs apart (storeSeparate);
	// nil when FerretDB runs inside srv.
	devdb *benchserver.Process
	c     *benchserver.Client
	// idle is what the server does per second with no request in flight
	// (the tailer's polls, the metrics' own upkeep), measured before the
	// catalogue and taken off each window.
	idle rate
}

// rate is CPU and allocation per second of wall time.
type rate struct {
	cpu, alloc, storeCPU float64
}

// cost is what one catalogue entry cost per request.
type cost struct {
	name string
	// cpu and alloc are the server process's CPU time (user + system) and
	// allocated bytes per request, background taken off.
	cpu   time.Duration
	alloc float64
	// storeCPU is the store process's CPU per request (storeSeparate only).
	storeCPU   time.Duration
	latency    time.Duration // p50 as the client saw it
	bodyBytes  int
	replyBytes int
}

// sample is a reading of the counters a window is measured with.
type sample struct {
	at       time.Time
	cpu      time.Duration
	storeCPU time.Duration
	alloc    float64
}

// begin and end sample the target's counters around a window. begin reads
// the allocation before the CPU and end the CPU before the allocation, so
// neither scrape's CPU falls in the window, and its allocation only as one
// scrape's worth, which the caller measures (scrapeCost) and takes off.
func (t *target) begin(ctx context.Context) (sample, error) {
	alloc, err := scrapeAlloc(ctx, t.c)
	if err != nil {
		return sample{}, err
	}
	s, err := t.cpu()
	s.alloc = alloc
	return s, err
}

func (t *target) end(ctx context.Context) (sample, error) {
	s, err := t.cpu()
	if err != nil {
		return s, err
	}
	s.alloc, err = scrapeAlloc(ctx, t.c)
	return s, err
}

func (t *target) cpu() (sample, error) {
	var s sample
	var err error
	if s.cpu, err = cpuTime(t.srv.Process); err != nil {
		return s, err
	}
	if t.devdb != nil {
		if s.storeCPU, err = cpuTime(t.devdb); err != nil {
			return s, err
		}
	}
	s.at = time.Now()
	return s, nil
}

// cpuTime is the CPU time p's threads have run, in nanoseconds: the sum of
// /proc/PID/task/*/schedstat's first field, the scheduler's own count,
// where /proc/PID/stat has clock ticks of 10 ms. A thread that exited takes
// its time with it; the Go runtime keeps its threads, so that is only a
// check: when the sum falls short of the ticks by more than a tick per
// thread, the ticks are returned.
func cpuTime(p *benchserver.Process) (time.Duration, error) {
	ticks, err := p.CPU()
	if err != nil {
		return 0, err
	}
	dir := fmt.Sprintf("/proc/%d/task", p.Cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return ticks, nil
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "schedstat"))
		if err != nil {
			continue // the thread has just exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return ticks, nil
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return ticks, nil
		}
		sum += time.Duration(ns)
	}
	if sum < ticks-time.Duration(len(tasks)+1)*10*time.Millisecond {
		return ticks, nil
	}
	return sum, nil
}

// scrapeAlloc reads the server's allocated bytes so far
// (runtime/metrics /gc/heap/allocs:bytes, exact to a span).
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

// scrapeCost is what one /metrics scrape allocates in the server: the
// median of a few, since a scrape that lands on a span refill reads a
// little high.
func scrapeCost(ctx context.Context, c *benchserver.Client) (float64, error) {
	var d []time.Duration // bytes, in a Duration for benchserver.Percentile
	prev, err := scrapeAlloc(ctx, c)
	if err != nil {
		return 0, err
	}
	for range 5 {
		v, err := scrapeAlloc(ctx, c)
		if err != nil {
			return 0, err
		}
		d, prev = append(d, time.Duration(v-prev)), v
	}
	return float64(benchserver.Percentile(d, 50)), nil
}

// measureIdle measures the target's background rate over d with no request
// in flight.
func (t *target) measureIdle(ctx context.Context, d time.Duration) error {
	scrape, err := scrapeCost(ctx, t.c)
	if err != nil {
		return err
	}
	s0, err := t.begin(ctx)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	s1, err := t.end(ctx)
	if err != nil {
		return err
	}
	secs := s1.at.Sub(s0.at).Seconds()
	t.idle = rate{
		cpu:      (s1.cpu - s0.cpu).Seconds() / secs,
		storeCPU: (s1.storeCPU - s0.storeCPU).Seconds() / secs,
		alloc:    max(0, s1.alloc-s0.alloc-scrape) / secs,
	}
	return nil
}

// measureCost sends a's request n times, one at a time, after a warm-up of
// 3, and returns its cost per request.
//
// The counters are process totals read around the whole window, so each
// request's share of the garbage collections it causes is in its CPU (a
// collection triggered in the window by garbage of the warm-up is the
// error, at most one cycle over n requests). The bodies are rendered before
// the window; what the server does in the background meanwhile is taken
// off at the idle rate. CPU is the scheduler's count in nanoseconds
// (cpuTime).
func measureCost(ctx context.Context, t *target, a attack, n int) (cost, error) {
	co := cost{name: a.name, bodyBytes: len(a.body(0))}
	for range 3 {
		if _, err := post(ctx, t.c, a, next()); err != nil {
			return co, err
		}
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = a.body(next())
	}
	scrape, err := scrapeCost(ctx, t.c)
	if err != nil {
		return co, err
	}
	s0, err := t.begin(ctx)
	if err != nil {
		return co, err
	}
	lat := make([]time.Duration, n)
	for i, body := range bodies {
		start := time.Now()
		size, err := postBody(ctx, t.c, a, body)
		if err != nil {
			return co, err
		}
		lat[i], co.replyBytes = time.Since(start), size
		bodies[i] = nil
	}
	s1, err := t.end(ctx)
	if err != nil {
		return co, err
	}
	secs := s1.at.Sub(s0.at).Seconds()
	perRequest := func(total, idle float64) float64 { return max(0, total-idle*secs) / float64(n) }
	co.cpu = time.Duration(perRequest((s1.cpu-s0.cpu).Seconds(), t.idle.cpu) * 1e9)
	co.storeCPU = time.Duration(perRequest((s1.storeCPU-s0.storeCPU).Seconds(), t.idle.storeCPU) * 1e9)
	co.alloc = perRequest(s1.alloc-s0.alloc-scrape, t.idle.alloc)
	co.latency = benchserver.Percentile(lat, 50)
	return co, nil
}
