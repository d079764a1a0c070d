package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// serverMetrics are the metrics measured as things happen (histograms of
// group commits and GraphQL operations, subscriptions and deliveries); the
// counters and gauges that the store and the projections keep themselves are
// read at scrape time by statsCollector (routes.go).
type serverMetrics struct {
	batchAppends  prometheus.Histogram
	batchEvents   prometheus.Histogram
	batchDuration prometheus.Histogram
	opDuration    *prometheus.HistogramVec
	subscriptions prometheus.Gauge
	delivered     prometheus.Counter
	rejected      *prometheus.CounterVec

	// store is the event store once it is open, for imageCollector.
	store atomic.Pointer[eventstore.Store]
}

func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		batchAppends: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hindsight_group_commit_appends",
			Help:    "Appends written by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1..512
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hindsight_group_commit_events",
			Help:    "Events written by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1..16384
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hindsight_append_duration_seconds",
			Help:    "Time of one group commit in the store, which is the store's share of every append in it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms..8s
		}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hindsight_graphql_duration_seconds",
			Help:    "Time to answer a GraphQL query or mutation, or the lifetime of a subscription, by operation type and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 600, 3600},
		}, []string{"operation", "outcome"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hindsight_graphql_subscriptions",
			Help: "Active GraphQL subscriptions (websocket and SSE).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hindsight_graphql_rejections_total",
			Help: "Requests and operations refused before execution, by reason: a limit (MAX_FIELDS, MAX_TOKENS, RATE_LIMITED, ...), HOST, UNAUTHENTICATED, FORBIDDEN, GRAPHQL_PARSE_FAILED or GRAPHQL_VALIDATION_FAILED.",
		}, []string{"reason"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hindsight_subscription_events_delivered_total",
			Help: "Events and order revisions handed to subscribers.",
		}),
	}
}

func (m *serverMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.batchAppends, m.batchEvents, m.batchDuration, m.opDuration, m.subscriptions, m.delivered, m.rejected,
		imageCollector{m}}
}

// watchStore makes the memory image's metrics read from store.
func (m *serverMetrics) watchStore(store *eventstore.Store) { m.store.Store(store) }

// imageCollector exports the memory image's size, budget, hits, misses and
// evictions, read from the store's Stats at scrape time. Before the store is
// open it exports nothing.
type imageCollector struct{ m *serverMetrics }

var (
	descImageBytes     = prometheus.NewDesc("hindsight_image_resident_bytes", "Bytes the memory image holds: the skeleton (never evicted) and resident event payloads.", nil, nil)
	descImageEvents    = prometheus.NewDesc("hindsight_image_resident_events", "Events whose payload is resident in the memory image.", nil, nil)
	descImageBudget    = prometheus.NewDesc("hindsight_image_budget_bytes", "The memory image's budget (HINDSIGHT_MEMORY_BUDGET); 0 means unlimited.", nil, nil)
	descImageHits      = prometheus.NewDesc("hindsight_image_hits_total", "Reads served from the memory image.", nil, nil)
	descImageMisses    = prometheus.NewDesc("hindsight_image_misses_total", "Reads of evicted events that went to the store.", nil, nil)
	descImageEvictions = prometheus.NewDesc("hindsight_image_evictions_total", "Event payloads evicted from the memory image to stay within its budget.", nil, nil)
)

func (imageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descImageBytes, descImageEvents, descImageBudget, descImageHits, descImageMisses, descImageEvictions} {
		ch <- d
	}
}

func (c imageCollector) Collect(ch chan<- prometheus.Metric) {
	store := c.m.store.Load()
	if store == nil {
		return
	}
	s := store.Stats()
	ch <- prometheus.MustNewConstMetric(descImageBytes, prometheus.GaugeValue, float64(s.ResidentBytes))
	ch <- prometheus.MustNewConstMetric(descImageEvents, prometheus.GaugeValue, float64(s.ResidentEvents))
	ch <- prometheus.MustNewConstMetric(descImageBudget, prometheus.GaugeValue, float64(s.BudgetBytes))
	ch <- prometheus.MustNewConstMetric(descImageHits, prometheus.CounterValue, float64(s.Hits))
	ch <- prometheus.MustNewConstMetric(descImageMisses, prometheus.CounterValue, float64(s.Misses))
	ch <- prometheus.MustNewConstMetric(descImageEvictions, prometheus.CounterValue, float64(s.Evictions))
}

// observeBatch is the event store's batch observer.
func (m *serverMetrics) observeBatch(appends, events int, d time.Duration) {
	m.batchAppends.Observe(float64(appends))
	m.batchEvents.Observe(float64(events))
	m.batchDuration.Observe(d.Seconds())
}

// observer feeds the GraphQL metrics and logs queries and mutations slower
// than slow (0 = never) with their request id and caller.
func (m *serverMetrics) observer(log *slog.Logger, slow time.Duration) graph.Observer {
	return graph.Observer{
		Operation: func(ctx context.Context, kind string, d time.Duration, failed bool) {
			outcome := "ok"
			if failed {
				outcome = "error"
			}
			m.opDuration.WithLabelValues(kind, outcome).Observe(d.Seconds())
			if slow > 0 && d > slow && kind != "subscription" {
				subject := "-"
				if p := auth.FromContext(ctx); p != nil {
					subject = p.Subject
				}
				log.WarnContext(ctx, "slow operation", "request_id", graph.RequestID(ctx), "operation", kind,
					"duration", d.Round(time.Millisecond).String(), "principal", subject, "failed", failed)
			}
		},
		Subscriptions: func(delta int) { m.subscriptions.Add(float64(delta)) },
		Delivered:     m.delivered.Inc,
		Rejected:      func(_ context.Context, reason string) { m.rejected.WithLabelValues(reason).Inc() },
	}
}
