// Command traceprobe reads what `abusebench -trace FILE` saved (the server's
// runtime trace FILE and the probe's requests FILE.probe) and says what the
// slowest probe requests waited for, and where the server's CPU went.
//
//	cd cmd/abusebench/traceprobe && go run . FILE [N]
//
// For the slowest 1% of the probe's requests it sums how long each spent
// before the server's connection goroutine saw it (the probe process
// sending it, and the server's netpoller, which runs when a P has nothing
// else to do, or from sysmon), in the server (until its write returned), and
// after the server's write (the probe process reading the answer), and how
// much of it overlapped a GC mark phase. The probe's connection is the
// server's connection goroutine that blocked on the network most often. The
// probe's clock is CLOCK_MONOTONIC, which the trace's clock snapshots
// carry. With N it prints the N slowest requests' timelines too.
//
// Then the server's CPU: each goroutine's running time, summed by the
// function it started in (for goroutines that existed before the trace,
// the outermost frame of a stack seen for them, marked ~).
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/exp/trace"
)

// span is a goroutine in one state from from to to.
type span struct {
	from, to trace.Time
	state    trace.GoState
	reason   string
	stack    string // the top frames, for a block or a syscall
}

type goroutine struct {
	start    string // the function it started in
	creator  trace.GoID
	spans    []span
	cur      span
	netWaits int
}

type rng struct {
	name     string
	from, to trace.Time
}

type request struct{ start, latency int64 } // trace time, ns

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: traceprobe FILE [N]")
		os.Exit(2)
	}
	show := 0
	if len(os.Args) > 2 {
		show, _ = strconv.Atoi(os.Args[2])
	}
	t, err := read(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "traceprobe:", err)
		os.Exit(1)
	}
	reqs, err := readProbe(os.Args[1]+".probe", t.offset)
	if err != nil {
		fmt.Fprintln(os.Stderr, "traceprobe:", err)
		os.Exit(1)
	}
	t.probeReport(reqs, show)
	t.cpuReport()
}

type parsed struct {
	gs          map[trace.GoID]*goroutine
	ranges      []rng
	first, last trace.Time
	offset      int64 // monotonic clock − trace clock
}

func frames(s trace.Stack, n int) []string {
	var out []string
	for f := range s.Frames() {
		out = append(out, f.Func)
		if n > 0 && len(out) == n {
			break
		}
	}
	return out
}

func read(path string) (*parsed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := trace.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, err
	}
	p := &parsed{gs: map[trace.GoID]*goroutine{}}
	open := map[string]rng{}
	haveOffset := false
	for {
		e, err := r.ReadEvent()
		if err != nil {
			break
		}
		if p.first == 0 {
			p.first = e.Time()
		}
		p.last = e.Time()
		switch e.Kind() {
		case trace.EventSync:
			if s := e.Sync(); s.ClockSnapshot != nil && !haveOffset {
				p.offset, haveOffset = int64(s.ClockSnapshot.Mono)-int64(s.ClockSnapshot.Trace), true
			}
		case trace.EventRangeBegin, trace.EventRangeActive:
			rg := e.Range()
			open[rg.Name+rg.Scope.String()] = rng{name: rg.Name, from: e.Time()}
		case trace.EventRangeEnd:
			rg := e.Range()
			k := rg.Name + rg.Scope.String()
			if o, ok := open[k]; ok {
				o.to = e.Time()
				p.ranges = append(p.ranges, o)
				delete(open, k)
			}
		case trace.EventStateTransition:
			st := e.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			id := st.Resource.Goroutine()
			from, to := st.Goroutine()
			g := p.gs[id]
			if g == nil {
				g = &goroutine{}
				p.gs[id] = g
			}
			if from == trace.GoNotExist && to == trace.GoRunnable {
				if fr := frames(st.Stack, 1); len(fr) > 0 {
					g.start = fr[0]
				}
				g.creator = e.Goroutine()
			}
			if g.start == "" && st.Stack != trace.NoStack {
				if fr := frames(st.Stack, 0); len(fr) > 0 {
					g.start = "~" + fr[len(fr)-1]
				}
			}
			if g.cur.from != 0 {
				g.cur.to = e.Time()
				g.spans = append(g.spans, g.cur)
			}
			var stack string
			if to == trace.GoWaiting || to == trace.GoSyscall {
				stack = strings.Join(frames(st.Stack, 4), " < ")
			}
			if to == trace.GoWaiting && st.Reason == "network" {
				g.netWaits++
			}
			g.cur = span{from: e.Time(), state: to, reason: st.Reason, stack: stack}
		}
	}
	if !haveOffset {
		return nil, fmt.Errorf("%s has no clock snapshot (a trace of Go 1.25 or later is needed)", path)
	}
	return p, nil
}

func readProbe(path string, offset int64) ([]request, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []request
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var start, lat int64
		if _, err := fmt.Sscan(line, &start, &lat); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, line, err)
		}
		out = append(out, request{start - offset, lat})
	}
	return out, nil
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func overlap(a, b, c, d trace.Time) int64 { return int64(max(0, min(b, d)-max(a, c))) }

func (p *parsed) probeReport(reqs []request, show int) {
	var probe *goroutine
	for _, g := range p.gs {
		if probe == nil || g.netWaits > probe.netWaits {
			probe = g
		}
	}
	var in []request
	for _, q := range reqs {
		if trace.Time(q.start) >= p.first && trace.Time(q.start+q.latency) <= p.last {
			in = append(in, q)
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i].latency > in[j].latency })
	n := len(in)/100 + 1
	fmt.Printf("%d probe requests, %d in the trace (%.2f s); the slowest 1%% (%d):\n", len(reqs), len(in), ms(int64(p.last-p.first))/1e3, min(n, len(in)))
	var total, gc, before, inServer, after int64
	split := 0
	for i, q := range in {
		if i == n {
			break
		}
		a, b := trace.Time(q.start), trace.Time(q.start+q.latency)
		total += q.latency
		for _, r := range p.ranges {
			if r.name == "GC concurrent mark phase" {
				gc += overlap(a, b, r.from, r.to)
			}
		}
		// The request arrives when the probe's connection goroutine leaves a
		// wait on the network; it is answered when its next write returns.
		var seen, wrote trace.Time
		for j, s := range probe.spans {
			if s.to <= a || s.from >= b {
				continue
			}
			if seen == 0 && j > 0 && s.state == trace.GoRunnable && probe.spans[j-1].reason == "network" && s.from > a {
				seen = s.from
			}
			if seen != 0 && wrote == 0 && s.state == trace.GoSyscall && strings.HasPrefix(s.stack, "syscall.write") {
				wrote = s.to
			}
		}
		if seen != 0 && wrote != 0 {
			split++
			before += int64(seen - a)
			inServer += int64(wrote - seen)
			after += int64(b - wrote)
		}
		if i < show {
			p.timeline(probe, q)
		}
	}
	fmt.Printf("  %.1f ms in all, %.1f ms of it in GC mark phases\n", ms(total), ms(gc))
	fmt.Printf("  the %d the trace splits: %.1f ms before the server saw them, %.1f ms in the server, %.1f ms after its write\n",
		split, ms(before), ms(inServer), ms(after))
	var marks, mark int64
	for _, r := range p.ranges {
		if r.name == "GC concurrent mark phase" {
			marks++
			mark += int64(r.to - r.from)
		}
	}
	fmt.Printf("GC: %d mark phases, %.1f ms (%.0f%% of the trace)\n", marks, ms(mark), 100*float64(mark)/float64(p.last-p.first))
}

// timeline prints one request's spans of the probe's connection goroutine
// and of the goroutines it started.
func (p *parsed) timeline(probe *goroutine, q request) {
	a, b := trace.Time(q.start), trace.Time(q.start+q.latency)
	fmt.Printf("\n  request at +%.3f ms, %.2f ms:\n", ms(int64(a-p.first)), ms(q.latency))
	var probeID trace.GoID
	for id, g := range p.gs {
		if g == probe {
			probeID = id
		}
	}
	for id, g := range p.gs {
		if g != probe && g.creator != probeID {
			continue
		}
		for _, s := range g.spans {
			if d := overlap(a, b, s.from, s.to); d > 0 {
				fmt.Printf("    g%-7d %-30.30s %-9s %-16.16s %7.3f ms at +%.3f %s\n", id, g.start, s.state, s.reason, ms(d), ms(int64(max(s.from, a)-a)), s.stack)
			}
		}
	}
}

func (p *parsed) cpuReport() {
	byStart := map[string]int64{}
	var all int64
	for _, g := range p.gs {
		name := g.start
		if name == "" {
			name = "?"
		}
		for _, s := range g.spans {
			if s.state == trace.GoRunning {
				byStart[name] += int64(s.to - s.from)
				all += int64(s.to - s.from)
			}
		}
	}
	names := make([]string, 0, len(byStart))
	for k := range byStart {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return byStart[names[i]] > byStart[names[j]] })
	fmt.Printf("\nserver CPU (goroutines running): %.0f ms in %.2f s\n", ms(all), ms(int64(p.last-p.first))/1e3)
	for i, k := range names {
		if i == 12 {
			break
		}
		fmt.Printf("  %8.1f ms  %s\n", ms(byStart[k]), k)
	}
}
