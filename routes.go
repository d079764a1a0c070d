package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/hindsight-dev/hindsight/explorer"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/graphiql"
	"github.com/hindsight-dev/hindsight/projections"
)

// routes builds the HTTP handler:
//
//	/          GraphiQL (subscriptions run over the websocket at /graphql),
//	/graphiql/ its files, embedded at pinned versions (package graphiql)
//	/explorer/ the time-travel explorer (package explorer)
//	/graphql   the GraphQL endpoint (POST, GET, websocket, SSE), behind CORS
//	/healthz   liveness: 200 while the process serves HTTP
//	/readyz    readiness: 200 once the store is loaded and answers a ping and
//	           the projections have caught up; 503 with a JSON reason otherwise
//	/metrics   Prometheus metrics
//	/checkpoint              the verifiable log's latest signed checkpoint (C2SP tlog-checkpoint, text)
//	/checkpoint/verifier-key the key that verifies it (golang.org/x/mod/sumdb/note form)
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", graphiql.Page("/graphql"))
	mux.Handle("GET "+graphiql.Prefix, graphiql.Assets())
	mux.Handle("GET /explorer/", explorer.Handler())
	mux.Handle("GET /explorer", http.RedirectHandler("/explorer/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /checkpoint", a.checkpoint)
	mux.HandleFunc("GET /checkpoint/verifier-key", a.verifierKey)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics(), promhttp.HandlerOpts{}))

	c := cors.New(cors.Options{
		// Always a function: rs/cors allows every origin when the list is
		// empty, and an empty list must mean "same origin only".
		AllowOriginFunc: func(origin string) bool {
			for _, o := range a.cfg.CORSOrigins {
				if o == "*" || strings.EqualFold(o, origin) {
					return true
				}
			}
			return false
		},
		// PUT and DELETE, and the token header, are graphql-sse's single
		// connection mode (graph/ssetransport).
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions},
		AllowedHeaders: []string{"Content-Type", "Accept", "Authorization", "X-Request-Id", "X-GraphQL-Event-Stream-Token"},
		ExposedHeaders: []string{"X-Request-Id"},
		MaxAge:         600,
	})
	mux.Handle("/graphql", c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		comp := a.wired.Load()
		if comp == nil {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"errors": []any{map[string]any{
				"message":    "the server is starting; retry shortly",
				"extensions": map[string]any{"code": graph.CodeStoreUnavailable},
			}}})
			return
		}
		comp.endpoint.ServeHTTP(w, r)
	})))
	return mux
}

func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	notReady := func(reason string) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": reason})
	}
	comp := a.wired.Load()
	switch {
	case comp == nil:
		notReady("starting: opening the store")
		return
	case !comp.store.Ready():
		reason := "the event store is loading its memory image"
		if p := comp.store.Problem(); p != "" {
			reason = p // the build keeps failing: say why and what to do
		}
		notReady(reason)
		return
	}
	// A log with missing positions is served, but never reported ready
	// in silence: the log and this reason name the missing positions.
	if p := comp.store.Problem(); p != "" {
		notReady(p)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := comp.store.Ping(ctx); err != nil {
		a.log.Warn("readyz: store ping failed", "err", err)
		notReady("the store does not answer a ping")
		return
	}
	if reason := tlogNotReady(comp.tlog); reason != "" {
		notReady(reason)
		return
	}
	if !comp.proj.Ready() {
		notReady("the projections are catching up with the log")
		return
	}
	if lag := comp.proj.Lag(); lag > a.cfg.ReadyMaxLag {
		notReady(fmt.Sprintf("the projections are %d positions behind the head (more than %d)", lag, a.cfg.ReadyMaxLag))
		return
	}
	// A string, as GraphQL's Position: positions are 64-bit and JSON
	// numbers lose precision above 2^53 in JavaScript.
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "headPosition": strconv.FormatInt(comp.store.HeadPosition(), 10)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// metrics builds a registry (not the global one) with the Go and process
// collectors and Hindsight's gauges, read from the store's Stats at scrape
// time.
func (a *app) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(statsCollector{a}, tlogCollector{a}, declaredCollector{a}, lagCollector{a})
	if a.m != nil {
		reg.MustRegister(a.m.collectors()...)
	}
	return reg
}

type statsCollector struct{ a *app }

var (
	descReady       = prometheus.NewDesc("hindsight_ready", "1 when the memory image is built and the store serves.", nil, nil)
	descHead        = prometheus.NewDesc("hindsight_head_position", "Highest global position in the memory image.", nil, nil)
	descStreams     = prometheus.NewDesc("hindsight_streams", "Streams in the memory image.", nil, nil)
	descEvents      = prometheus.NewDesc("hindsight_resident_events", "Events held in the memory image.", nil, nil)
	descBytes       = prometheus.NewDesc("hindsight_resident_bytes", "Estimated bytes held by the memory image.", nil, nil)
	descSubscribers = prometheus.NewDesc("hindsight_subscribers", "Open event-store subscriptions.", nil, nil)
	descStreamConns = prometheus.NewDesc("hindsight_stream_connections", "Open websocket and SSE connections.", nil, nil)
	descAppends     = prometheus.NewDesc("hindsight_appends_total", "Successful appends (idempotent replays not counted).", nil, nil)
	descConflicts   = prometheus.NewDesc("hindsight_conflicts_total", "Appends rejected with WRONG_EXPECTED_VERSION.", nil, nil)
	descBatches     = prometheus.NewDesc("hindsight_group_commits_total", "Group-commit round trips to the store.", nil, nil)
	descStoreErrors = prometheus.NewDesc("hindsight_store_errors_total", "Failed round trips to the store.", nil, nil)
	descImageReads  = prometheus.NewDesc("hindsight_image_reads_total", "Reads by where they were served from.", []string{"source"}, nil)
	descProjLag     = prometheus.NewDesc("hindsight_projection_lag", "Positions the order read model is behind the head.", nil, nil)
	descProjCkpt    = prometheus.NewDesc("hindsight_projection_checkpoint", "Position the order read model has applied.", nil, nil)
	descBatched     = prometheus.NewDesc("hindsight_group_commit_appends_total", "Appends written by group commits.", nil, nil)
	// Snapshots are an optimisation, so a full write queue drops them: many
	// drops mean slower time travel and restarts, not lost data.
	descSnapWrites = prometheus.NewDesc("hindsight_snapshot_writes_total", "Projection snapshots (orders, stream states, declarative projections' kept states) offered for writing, by outcome: saved, dropped (the write queue was full) or failed.", []string{"outcome"}, nil)
)

func (statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descHead, descStreams, descEvents, descBytes, descSubscribers,
		descStreamConns, descAppends, descConflicts, descBatches, descStoreErrors, descImageReads, descProjLag,
		descProjCkpt, descBatched, descSnapWrites} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	comp := c.a.wired.Load()
	if comp == nil {
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, 0)
		return
	}
	s := comp.store.Stats()
	ready := 0.0
	if s.Ready {
		ready = 1
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descReady, ready)
	gauge(descHead, float64(s.HeadPosition))
	gauge(descStreams, float64(s.Streams))
	gauge(descEvents, float64(s.ResidentEvents))
	gauge(descBytes, float64(s.ResidentBytes))
	gauge(descSubscribers, float64(s.Subscribers))
	gauge(descStreamConns, float64(comp.endpoint.Streams()))
	gauge(descProjLag, float64(comp.proj.Lag()))
	gauge(descProjCkpt, float64(comp.proj.Checkpoint()))
	counter(descBatched, float64(s.BatchedAppends))
	counter(descAppends, float64(s.Appends))
	counter(descConflicts, float64(s.Conflicts))
	counter(descBatches, float64(s.Batches))
	counter(descStoreErrors, float64(s.StoreErrors))
	counter(descImageReads, float64(s.Hits), "memory")
	counter(descImageReads, float64(s.Misses), "store")
	collectSnapshotWrites(ch, comp.proj.Stats())
}

// collectSnapshotWrites writes the snapshot writer's outcomes.
func collectSnapshotWrites(ch chan<- prometheus.Metric, st projections.Stats) {
	for outcome, n := range map[string]uint64{"saved": st.SnapshotsSaved, "dropped": st.SnapshotsDropped, "failed": st.SnapshotsFailed} {
		ch <- prometheus.MustNewConstMetric(descSnapWrites, prometheus.CounterValue, float64(n), outcome)
	}
}
