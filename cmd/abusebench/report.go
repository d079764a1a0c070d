package main

import (
	"fmt"
	"io"
	"time"
)

const cpuTarget, allocTarget = 50 * time.Millisecond, 16 << 20

func report(w io.Writer, o config, runs []measured, cont *contention) {
	fmt.Fprintf(w, "## Cost per request (default limits, %d requests each, one at a time)\n\n", o.requests)
	fmt.Fprintln(w, "server-only: the store is `hindsight devdb`, another process, so CPU and allocation are the server's own;")
	fmt.Fprintln(w, "the store's CPU is shown beside. embedded: FerretDB runs inside the server, as `go run .` runs it.")
	fmt.Fprintln(w, "Background work measured idle is taken off; the target applies to the server's own cost.")
	fmt.Fprintln(w)
	for _, label := range labels(runs) {
		fmt.Fprintf(w, "### %s\n\n", label)
		var cols []measured
		for _, m := range runs {
			if m.label == label {
				cols = append(cols, m)
			}
		}
		head, rule := "| request | body | answer |", "|---|---|---|"
		for _, m := range cols {
			head += fmt.Sprintf(" %s CPU | %s allocated |", m.store, m.store)
			rule += "---|---|"
			if m.store == storeSeparate {
				head += " store CPU |"
				rule += "---|"
			}
		}
		fmt.Fprintln(w, head+" p50 latency | within 50 ms / 16 MiB |")
		fmt.Fprintln(w, rule+"---|---|")
		for i, co := range cols[0].costs {
			row := fmt.Sprintf("| %s | %s | %s |", co.name, size(float64(co.bodyBytes)), size(float64(co.replyBytes)))
			for _, m := range cols {
				c := m.costs[i]
				row += fmt.Sprintf(" %s | %s |", ms(c.cpu), size(c.alloc))
				if m.store == storeSeparate {
					row += fmt.Sprintf(" %s |", ms(c.storeCPU))
				}
			}
			ok := "yes"
			if co.cpu > cpuTarget || co.alloc > allocTarget {
				ok = "**no**"
			}
			fmt.Fprintf(w, "%s %s | %s |\n", row, ms(co.latency), ok)
		}
		fmt.Fprint(w, "\nIdle, per second, taken off:")
		for _, m := range cols {
			fmt.Fprintf(w, " %s %.1f ms CPU, %s;", m.store, m.idle.cpu*1e3, size(m.idle.alloc))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w)
	}
	compare(w, runs)
	if cont != nil {
		contended(w, o, cont)
	}
}

// labels returns the runs' labels in order, once each.
func labels(runs []measured) []string {
	var out []string
	for _, m := range runs {
		if len(out) == 0 || out[len(out)-1] != m.label {
			out = append(out, m.label)
		}
	}
	return out
}

// compare prints this build's cost as a ratio of the baseline's, store by
// store, when there is a baseline.
func compare(w io.Writer, runs []measured) {
	base := map[storeMode]measured{}
	for _, m := range runs {
		if m.label == "baseline" {
			base[m.store] = m
		}
	}
	if len(base) == 0 {
		return
	}
	fmt.Fprintln(w, "### this build ÷ baseline")
	fmt.Fprintln(w)
	head, rule := "| request |", "|---|"
	var cols []measured
	for _, m := range runs {
		if _, ok := base[m.store]; ok && m.label != "baseline" {
			cols = append(cols, m)
			head += fmt.Sprintf(" %s CPU | %s allocated |", m.store, m.store)
			rule += "---|---|"
		}
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, rule)
	for i := range cols[0].costs {
		row := "| " + cols[0].costs[i].name + " |"
		for _, m := range cols {
			b, c := base[m.store].costs[i], m.costs[i]
			row += fmt.Sprintf(" %s | %s |", ratio(float64(c.cpu), float64(b.cpu)), ratio(c.alloc, b.alloc))
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}

func ratio(after, before float64) string {
	if before <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", after/before)
}

func contended(w io.Writer, o config, c *contention) {
	ratio := float64(c.attack) / float64(c.idle)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(w, "## Contention (%s): %d attackers looping over the catalogue, one `{ headPosition }` client\n\n", c.store, o.attackers)
	if o.exclude != "" {
		fmt.Fprintf(w, "Left out of the loop: the requests named with %q.\n\n", o.exclude)
	}
	fmt.Fprintf(w, "The attackers send over %s.\n\n", o.transport)
	if o.probeQuery != defaultProbe {
		fmt.Fprintf(w, "The probe sends `%s` instead of `%s`.\n\n", o.probeQuery, defaultProbe)
	}
	if o.writes > 0 {
		fmt.Fprintf(w, "A writer appended %d small events a second while both p99s were measured.\n\n", o.writes)
	}
	if o.nice {
		fmt.Fprintln(w, "-nice-clients: the attackers' process and the separate store ran at nice 19, as if on other machines; this is not the figure the target is judged on.")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| measure | value | target | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| `{ headPosition }` p99, idle | %.2f ms | | |\n", float64(c.idle)/1e6)
	fmt.Fprintf(w, "| `{ headPosition }` p99, under attack | %.2f ms | | |\n", float64(c.attack)/1e6)
	fmt.Fprintf(w, "| ratio | %.1f× | ≤ 5× | %s |\n", ratio, verdict(ratio <= 5))
	fmt.Fprintf(w, "| RSS before the attack | %s | | |\n", size(float64(c.rssBefore)))
	fmt.Fprintf(w, "| peak RSS under attack | %s | < 512 MiB | %s |\n", size(float64(c.peakRSS)), verdict(c.peakRSS < 512<<20))
	fmt.Fprintf(w, "| attack requests answered | %d | | |\n", c.got)
	fmt.Fprintf(w, "| load average (1, 5, 15 min) after the attack | %s | | |\n", attackLoad)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func size(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
