package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Evidence for the contention phase: -trace FILE starts the server with
// its profiler on a loopback port (HINDSIGHT_DEBUG_ADDR) and saves a runtime
// trace of the attacked `{ headPosition }` measurement to FILE, for `go tool
// trace` (e.g. -pprof=sched for where goroutines waited for a P). The report
// gives the load average, which says how much of the machine the benchmark
// had.

// debugEnv picks a free loopback port for the profiler; it returns the
// server's environment entry and the profiler's base URL.
func debugEnv() (env, base string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return "HINDSIGHT_DEBUG_ADDR=" + addr, "http://" + addr, nil
}

// startTrace starts saving a trace of d to path, what the server
// allocated meanwhile (a delta allocs profile, for go tool pprof
// -sample_index=alloc_space) to path.allocs and a CPU profile to path.cpu;
// wait returns once all are saved, with a dump of the server's goroutines
// (path.goroutines).
func startTrace(ctx context.Context, base, path string, d time.Duration) (wait func() error) {
	secs := max(1, int(d.Seconds()+0.5))
	trace := save(ctx, fmt.Sprintf("%s/debug/pprof/trace?seconds=%d", base, secs), path)
	allocs := save(ctx, fmt.Sprintf("%s/debug/pprof/allocs?seconds=%d", base, secs), path+".allocs")
	cpu := save(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), path+".cpu")
	return func() error {
		err := errors.Join(trace(), allocs(), cpu())
		// Where every goroutine is once the measurement ended, while the
		// attackers still run.
		return errors.Join(err, save(ctx, base+"/debug/pprof/goroutine?debug=1", path+".goroutines")())
	}
}

// save starts saving what url answers to path.
func save(ctx context.Context, url, path string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: status %d", url, resp.StatusCode)
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return func() error { return <-done }
}

// loadAverage is /proc/loadavg's 1-, 5- and 15-minute averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// excluded reports whether name contains one of the comma-separated parts
// of exclude.
func excluded(name, exclude string) bool {
	for _, part := range strings.Split(exclude, ",") {
		if part != "" && strings.Contains(name, part) {
			return true
		}
	}
	return false
}
