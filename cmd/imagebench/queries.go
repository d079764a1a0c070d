package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// query is one of the five measured reads, with how to pick its arguments
// from what was loaded and how to check its answer.
type query struct {
	name  string
	gql   string
	vars  func(r *rand.Rand, d *dataset) map[string]any
	check func(vars map[string]any, data json.RawMessage) error
}

// randomTime picks a time in [first, last].
func randomTime(r *rand.Rand, first, last time.Time) string {
	t := first
	if span := last.Sub(first); span > 0 {
		t = first.Add(time.Duration(r.Int64N(int64(span) + 1)))
	}
	return t.UTC().Format(time.RFC3339Nano)
}

var queries = []query{
	{
		name: "order(id, at: {version})",
		gql: `query($id: ID!, $v: Int!) { order(id: $id, at: {version: $v}) {
			id version position status customerId totalCents items { sku quantity unitPriceCents } createdAt updatedAt } }`,
		vars: func(r *rand.Rand, d *dataset) map[string]any {
			o := d.orders[r.IntN(len(d.orders))]
			return map[string]any{"id": o.id, "v": 1 + r.Int64N(o.version)}
		},
		check: func(vars map[string]any, data json.RawMessage) error {
			var r struct {
				Order *struct{ Version int64 }
			}
			if err := json.Unmarshal(data, &r); err != nil {
				return err
			}
			if r.Order == nil || r.Order.Version != vars["v"].(int64) {
				return fmt.Errorf("order %v at version %v: got %s", vars["id"], vars["v"], data)
			}
			return nil
		},
	},
	{
		name: "stream(id).state(at: {time})",
		gql:  `query($id: String!, $t: Time!) { stream(id: $id) { id version state(at: {time: $t}) } }`,
		vars: func(r *rand.Rand, d *dataset) map[string]any {
			s := d.streams[r.IntN(len(d.streams))]
			return map[string]any{"id": s.id, "t": randomTime(r, s.first, s.last)}
		},
		check: func(vars map[string]any, data json.RawMessage) error {
			var r struct {
				Stream *struct{ State json.RawMessage }
			}
			if err := json.Unmarshal(data, &r); err != nil {
				return err
			}
			if r.Stream == nil || len(r.Stream.State) == 0 || string(r.Stream.State) == "null" {
				return fmt.Errorf("stream %v at %v: got %s", vars["id"], vars["t"], data)
			}
			return nil
		},
	},
	{
		name: "orders(at: {time}, first: 50)",
		gql: `query($t: Time!) { orders(at: {time: $t}, first: 50) { totalCount pageInfo { hasNextPage endCursor }
			edges { cursor node { id version status customerId totalCents updatedAt } } } }`,
		vars: func(r *rand.Rand, d *dataset) map[string]any {
			return map[string]any{"t": randomTime(r, d.first, d.last)}
		},
		check: func(vars map[string]any, data json.RawMessage) error {
			var r struct {
				Orders struct {
					TotalCount int
					Edges      []json.RawMessage
				}
			}
			if err := json.Unmarshal(data, &r); err != nil {
				return err
			}
			if len(r.Orders.Edges) != min(50, r.Orders.TotalCount) {
				return fmt.Errorf("orders at %v: %d edges of %d", vars["t"], len(r.Orders.Edges), r.Orders.TotalCount)
			}
			return nil
		},
	},
	{
		name: "orderStats(at: {time})",
		gql:  `query($t: Time!) { orderStats(at: {time: $t}) { at position revenueCents countByStatus { status count } } }`,
		vars: func(r *rand.Rand, d *dataset) map[string]any {
			return map[string]any{"t": randomTime(r, d.first, d.last)}
		},
		check: func(vars map[string]any, data json.RawMessage) error {
			var r struct {
				OrderStats struct{ CountByStatus []json.RawMessage }
			}
			if err := json.Unmarshal(data, &r); err != nil {
				return err
			}
			if len(r.OrderStats.CountByStatus) != 5 {
				return fmt.Errorf("orderStats at %v: got %s", vars["t"], data)
			}
			return nil
		},
	},
	{
		name: "events(afterPosition: mid, first: 50)",
		gql: `query($p: Position!) { events(afterPosition: $p, first: 50) { pageInfo { hasNextPage endCursor }
			edges { node { id streamId version position type data metadata recordedAt hash } } } }`,
		vars: func(r *rand.Rand, d *dataset) map[string]any {
			// From the middle half of the log.
			return map[string]any{"p": d.head/4 + r.Int64N(max(1, d.head/2))}
		},
		check: func(vars map[string]any, data json.RawMessage) error {
			var r struct {
				Events struct {
					Edges []struct {
						Node struct{ Position string }
					}
				}
			}
			if err := json.Unmarshal(data, &r); err != nil {
				return err
			}
			want := fmt.Sprint(vars["p"].(int64) + 1)
			if len(r.Events.Edges) != 50 || r.Events.Edges[0].Node.Position != want {
				return fmt.Errorf("events after %v: %d edges, first %s", vars["p"], len(r.Events.Edges), data[:min(len(data), 200)])
			}
			return nil
		},
	},
}

// latency is one query's measurement.
type latency struct {
	p50, p99, max time.Duration
	n             int
	errors        int // failed requests and wrong answers
	firstErr      string
	hits, misses  float64 // image hits and misses meanwhile; -1 = no metric
}

func (l latency) hitRate() string {
	if l.hits < 0 || l.misses < 0 {
		return "n/a"
	}
	if l.hits+l.misses == 0 {
		return "no reads"
	}
	return fmt.Sprintf("%.1f%%", 100*l.hits/(l.hits+l.misses))
}

// measure runs each query warm times unmeasured, then n times, one request
// at a time, with arguments drawn from d by a generator seeded with seed.
func measure(ctx context.Context, c *benchserver.Client, d *dataset, n, warm int, seed uint64, label string, log io.Writer) ([]latency, error) {
	out := make([]latency, len(queries))
	for qi, q := range queries {
		r := rand.New(rand.NewPCG(seed, uint64(qi)))
		res := &out[qi]
		for range warm {
			v := q.vars(r, d)
			var data json.RawMessage
			if err := c.Do(ctx, q.gql, v, &data); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.errors++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
			}
		}
		m0, err := c.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		times := make([]time.Duration, 0, n)
		for range n {
			v := q.vars(r, d)
			var data json.RawMessage
			t := time.Now()
			err := c.Do(ctx, q.gql, v, &data)
			took := time.Since(t)
			if err == nil {
				err = q.check(v, data)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.errors++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				continue
			}
			times = append(times, took)
		}
		m1, err := c.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		res.hits, res.misses = delta(m0, m1, metricHits), delta(m0, m1, metricMisses)
		res.n = len(times)
		res.p50, res.p99, res.max = benchserver.Percentile(times, 50), benchserver.Percentile(times, 99), benchserver.Percentile(times, 100)
		fmt.Fprintf(log, "[%s] %-38s p50 %8s  p99 %8s  max %8s  hits %s  errors %d\n", label, q.name, ms(res.p50), ms(res.p99), ms(res.max), res.hitRate(), res.errors)
		if res.firstErr != "" {
			fmt.Fprintf(log, "[%s] %s: first error: %s\n", label, q.name, res.firstErr)
		}
	}
	return out, nil
}

// delta is the growth of a counter between two scrapes; -1 if it is missing.
func delta(m0, m1 benchserver.Metrics, name string) float64 {
	a, ok0 := m0.Get(name)
	b, ok1 := m1.Get(name)
	if !ok0 || !ok1 {
		return -1
	}
	return b - a
}
