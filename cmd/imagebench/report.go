package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The targets of issues 9 and 14 (14 tightened the image's to 1.5×).
const (
	targetQueryRatio = 2.0 // p50 at the large size / p50 at 2,000
	targetReadyRatio = 2.0 // start → ready / raw driver read
	targetImageRatio = 1.5 // resident bytes / JSON bytes
)

func ms(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// count formats n with thousands separators.
func count(n int64) string {
	if n < 0 {
		return "-" + count(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func verdict(ratio, target float64) string {
	if ratio <= target {
		return "met"
	}
	return "**missed**"
}

// metricCell formats a metric of p, or n/a.
func metricCell(p *phase, name string, bytes bool) string {
	v, ok := p.metric(name)
	if !ok {
		return "n/a"
	}
	if bytes {
		return mib(int64(v))
	}
	return count(int64(v))
}

// totalHits sums the hits and misses of a phase's queries.
func totalHits(p *phase) latency {
	t := latency{}
	for _, l := range p.lat {
		if l.hits < 0 || l.misses < 0 {
			return latency{hits: -1, misses: -1}
		}
		t.hits += l.hits
		t.misses += l.misses
	}
	return t
}

func printReport(w io.Writer, r *report) {
	s, l, b := r.small, r.large, r.budget
	fmt.Fprintf(w, "\n## imagebench: reads at %s vs %s events\n\n", count(s.events), count(l.events))
	fmt.Fprintf(w, "%d sequential requests per query and phase over HTTP (after %d warm-up requests), random arguments with seed %d.\n\n",
		r.o.requests, max(10, r.o.requests/10), r.o.seed)
	hdr := fmt.Sprintf("| query | p50 @%s | p99 @%s | p50 @%s | p99 @%s | p50 ratio (target ≤ %.0f×) | hit rate @%s |",
		count(s.events), count(s.events), count(l.events), count(l.events), targetQueryRatio, count(l.events))
	sep := "|---|---:|---:|---:|---:|---:|---:|"
	if b != nil {
		hdr += fmt.Sprintf(" p50 budget %s | p99 budget | hit rate budget |", mib(b.budget))
		sep += "---:|---:|---:|"
	}
	fmt.Fprintln(w, hdr)
	fmt.Fprintln(w, sep)
	for i, q := range queries {
		ls, ll := s.lat[i], l.lat[i]
		ratio := float64(ll.p50) / float64(max(ls.p50, 1))
		row := fmt.Sprintf("| `%s` | %s | %s | %s | %s | %.2f× %s | %s |", q.name, ms(ls.p50), ms(ls.p99), ms(ll.p50), ms(ll.p99),
			ratio, verdict(ratio, targetQueryRatio), ll.hitRate())
		if b != nil {
			lb := b.lat[i]
			row += fmt.Sprintf(" %s | %s | %s |", ms(lb.p50), ms(lb.p99), lb.hitRate())
		}
		fmt.Fprintln(w, row)
	}

	fmt.Fprintf(w, "\n| measure | value |\n|---|---|\n")
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	row("events in the store", "%s (small phase), %s (large phase)", count(s.events), count(l.events))
	row("orders / generic streams", "%s / %s (small phase: %s / %s)", count(int64(r.orders)), count(int64(r.streams)),
		count(int64(r.smallLoad.orders)), count(int64(r.smallLoad.streams)))
	for _, x := range []struct {
		name string
		ld   loadResult
	}{{"small", r.smallLoad}, {"large", r.largeLoad}} {
		row("load, "+x.name+" phase", "%s events in %v (%.0f events/s; %s requests, %d clients; %d errors)", count(x.ld.events),
			x.ld.took.Round(time.Second), float64(x.ld.events)/x.ld.took.Seconds(), count(int64(x.ld.requests)), r.o.clients, x.ld.errors)
	}
	row("JSON size of the data", "%s (`hindsight export`, JSON Lines with every stored field; export took %v)", mib(r.jsonBytes), r.exportTook.Round(time.Millisecond))
	if r.o.padEvery > 0 || r.o.huge > 0 {
		row("size mix", "every %dth generic append has one event of 64 KiB; %d appends of one event of %s", r.o.padEvery, r.o.huge, mib(hugeBytes))
	}
	if t := r.trip; t != nil {
		row("export → import → export", "%s: import %v, export %v, %s (sha256 of both files)", mib(t.bytes),
			t.importTook.Round(time.Millisecond), t.exportTook.Round(time.Millisecond), map[bool]string{true: "byte-identical", false: "DIFFERENT"}[t.identical])
	}
	row("raw driver read", "%v (%s commits, %s events, %s of BSON; fresh client, Find on hindsight.commits, bson.Raw)",
		r.raw.took.Round(time.Millisecond), count(r.raw.commits), count(r.raw.events), mib(r.raw.bytes))
	readyRatio := float64(l.ready) / float64(max(r.raw.took, 1))
	row(fmt.Sprintf("start → /readyz 200 @%s", count(l.events)), "%v = %.2f× the raw read (target ≤ %.0f×: %s)",
		l.ready.Round(time.Millisecond), readyRatio, targetReadyRatio, verdict(readyRatio, targetReadyRatio))
	row(fmt.Sprintf("start → /readyz 200 @%s", count(s.events)), "%v", s.ready.Round(time.Millisecond))
	for _, p := range []*phase{s, l, b} {
		if p == nil {
			continue
		}
		row("server RSS, "+p.label+" phase (after its queries)", "%s (peak %s)", mib(p.rss), mib(p.hwm))
		row(metricResidentBytes+", "+p.label, "%s", metricCell(p, metricResidentBytes, true))
		row(metricResidentEvents+", "+p.label, "%s", metricCell(p, metricResidentEvents, false))
		row(metricHits+" / "+metricMisses+", "+p.label+" (since start)", "%s / %s", metricCell(p, metricHits, false), metricCell(p, metricMisses, false))
		// The store's older metrics, for reference while the image metrics
		// are missing.
		if _, ok := p.metric(metricResidentBytes); !ok {
			if v, ok := p.metric("hindsight_resident_bytes"); ok {
				row("hindsight_resident_bytes (older gauge), "+p.label, "%s", mib(int64(v)))
			}
		}
		if _, ok := p.metric(metricHits); !ok {
			mem, ok1 := p.metric(`hindsight_image_reads_total{source="memory"}`)
			store, ok2 := p.metric(`hindsight_image_reads_total{source="store"}`)
			if ok1 && ok2 {
				row("hindsight_image_reads_total memory / store (older counter), "+p.label+" (since start)", "%s / %s", count(int64(mem)), count(int64(store)))
			}
		}
	}
	if rb, ok := l.metric(metricResidentBytes); ok && r.jsonBytes > 0 {
		ratio := rb / float64(r.jsonBytes)
		row("image / JSON", "%.2f× (%s / %s; target ≤ %.1f×: %s)", ratio, mib(int64(rb)), mib(r.jsonBytes), targetImageRatio, verdict(ratio, targetImageRatio))
	} else {
		row("image / JSON", "n/a (%s is missing); RSS / JSON = %.2f×", metricResidentBytes, float64(l.rss)/float64(max(r.jsonBytes, 1)))
	}
	if b != nil {
		row("memory budget", "%s = %s bytes (%s)", mib(b.budget), count(b.budget), b.budgetWhy)
		row("start → /readyz 200 with the budget", "%v = %.2f× the raw read", b.ready.Round(time.Millisecond), float64(b.ready)/float64(max(r.raw.took, 1)))
		t := totalHits(b)
		if t.hits < 0 {
			row("hit rate with the budget (all queries)", "n/a (no %s / %s)", metricHits, metricMisses)
		} else {
			row("hit rate with the budget (all queries)", "%s (%s hits, %s misses)", t.hitRate(), count(int64(t.hits)), count(int64(t.misses)))
		}
	}
	if t := totalHits(l); t.hits >= 0 {
		row(fmt.Sprintf("hit rate @%s (all queries)", count(l.events)), "%s (%s hits, %s misses)", t.hitRate(), count(int64(t.hits)), count(int64(t.misses)))
	}
	fmt.Fprintln(w)
}

var logLevel = regexp.MustCompile(`level=(WARN|ERROR)\b.*?msg=("(?:[^"\\]|\\.)*"|\S+)`)

// printLogFindings lists the warnings and errors of the server logs.
func printLogFindings(w io.Writer, logs []string) {
	var lines []string
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		counts := map[string]int{}
		var order []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			m := logLevel.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			k := m[1] + " " + m[2]
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		f.Close()
		for _, k := range order {
			lines = append(lines, fmt.Sprintf("- %s: %d× %s", strings.TrimSuffix(filepath.Base(path), ".log"), counts[k], k))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "server log warnings and errors:\n%s\n", strings.Join(lines, "\n"))
	}
}
