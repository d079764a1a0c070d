package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// BenchmarkCatchUp measures what a subscription's catch-up costs the server:
// a subscriber from the start of a stream of catchUpEvents events of about 4
// KiB each (streamEvents, afterVersion 0) or of the whole log (events,
// afterPosition "0"), over graphql-transport-ws and over SSE, read by a
// client that reads as fast as it can and by one that pauses 1 ms every 64
// events. The events come from the memory image ("image") or, with a memory
// budget of 4 MiB, from the store through the catch-up cursor ("store").
//
//	go test ./graph -run '^$' -bench CatchUp -benchtime 2x
//
// It reports per catch-up:
//
//   - alloc-MiB: bytes allocated by the process while the catch-up ran
//     (the clients read with one reused buffer and allocate next to nothing);
//   - peak-heap-MiB: the most the heap's objects (live and not yet collected)
//     grew over the heap after a collection before the subscription began,
//     sampled every millisecond;
//   - peak-live-MiB: the most the live heap, as the collections during the
//     catch-up found it, grew over that same baseline;
//   - events/s.
//
// The catch-up streams: the store's subscription takes pages of 64 events
// from the image (or one commit at a time from the store's cursor), the
// transport writes each event before it takes the next, so the peaks do not
// grow with the range. BenchmarkCatchUp/*/len=1024 against len=16384 shows it.
func BenchmarkCatchUp(b *testing.B) {
	for _, src := range []struct {
		name   string
		budget int64
	}{{"image", 0}, {"store", 4 << 20}} {
		for _, n := range []int{1024, catchUpEvents} {
			b.Run(fmt.Sprintf("%s/len=%d", src.name, n), func(b *testing.B) {
				env := newCatchUpEnv(b, n, src.budget, graph.Limits{})
				for _, kind := range []string{"stream", "log"} {
					for _, tr := range []string{"ws", "sse"} {
						for _, slow := range []bool{false, true} {
							name := kind + "/" + tr + "/fast"
							if slow {
								name = kind + "/" + tr + "/slow"
							}
							b.Run(name, func(b *testing.B) { env.bench(b, kind, tr, slow) })
						}
					}
				}
			})
		}
	}
}

// catchUpEvents is the length of the stream the claim of 114 MiB was about.
const catchUpEvents = 16384

// catchUpEnv is a server whose log is one stream, "big", of n events.
type catchUpEnv struct {
	n     int
	store *eventstore.Store
	ep    *graph.Endpoint
	srv   *httptest.Server
}

func newCatchUpEnv(tb testing.TB, n int, budget int64, limits graph.Limits) *catchUpEnv {
	tb.Helper()
	store, ep, srv := serveBenchStore(tb, budget, limits)
	appendPadded(tb, store, "big", n)
	return &catchUpEnv{n: n, store: store, ep: ep, srv: srv}
}

// serveBenchStore serves a store on a fresh database, with a memory budget
// when budget > 0, at /graphql of a test server that logs only errors.
func serveBenchStore(tb testing.TB, budget int64, limits graph.Limits) (*eventstore.Store, *graph.Endpoint, *httptest.Server) {
	tb.Helper()
	mc, db := storetest.Client(tb)
	var opts []eventstore.Option
	if budget > 0 {
		opts = append(opts, eventstore.WithMemoryBudget(budget))
	}
	store := storetest.Store(tb, mc, db, opts...)
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
	ep, srv := serveEndpoint(tb, graph.EndpointConfig{Resolver: &graph.Resolver{Store: store, Log: log, Limits: limits}, Log: log})
	return store, ep, srv
}

// appendPadded appends n events of about 4 KiB to stream, in commits of 128.
func appendPadded(tb testing.TB, store *eventstore.Store, stream string, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	data := json.RawMessage(`{"pad":"` + strings.Repeat("x", 4<<10-10) + `"}`)
	batch := make([]eventstore.NewEvent, 0, 128)
	for i := 0; i < n; {
		batch = batch[:0]
		for ; i < n && len(batch) < cap(batch); i++ {
			batch = append(batch, eventstore.NewEvent{Type: "Padded", Data: data})
		}
		if _, err := store.Append(ctx, stream, eventstore.Any{}, batch...); err != nil {
			tb.Fatalf("append: %v", err)
		}
	}
}

// catchUpQuery is the subscription of kind ("stream" or "log") from the start.
func catchUpQuery(kind string) string {
	if kind == "stream" {
		return `subscription { streamEvents(streamId: "big", afterVersion: 0) { position version type data } }`
	}
	return `subscription { events(afterPosition: "0") { position version type data } }`
}

func (env *catchUpEnv) bench(b *testing.B, kind, tr string, slow bool) {
	var total, peakHeap, peakLive uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		base := heapObjects()
		baseLive := liveHeap()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		stop := sampleHeap()
		got, err := catchUp(env.srv.URL, kind, tr, env.n, slow)
		heap, live := stop()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if err != nil {
			b.Fatal(err)
		}
		if got != env.n {
			b.Fatalf("got %d events, want %d", got, env.n)
		}
		total += ms.TotalAlloc - ms0.TotalAlloc
		peakHeap = max(peakHeap, heap-min(heap, base))
		peakLive = max(peakLive, live-min(live, baseLive))
	}
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(mib(total)/float64(b.N), "alloc-MiB")
	b.ReportMetric(mib(peakHeap), "peak-heap-MiB")
	b.ReportMetric(mib(peakLive), "peak-live-MiB")
	b.ReportMetric(float64(env.n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

var heapSamples = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}

func heapObjects() uint64 {
	s := []metrics.Sample{heapSamples[0]}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func liveHeap() uint64 {
	s := []metrics.Sample{heapSamples[1]}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap every millisecond until stop, which returns
// the largest heap objects and live heap seen.
func sampleHeap() (stop func() (heap, live uint64)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var heap, live uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := make([]metrics.Sample, len(heapSamples))
		copy(s, heapSamples)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			heap, live = max(heap, s[0].Value.Uint64()), max(live, s[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return heap, live
	}
}

// catchUp subscribes from the start over tr ("ws" or "sse") and reads n
// events, pausing 1 ms every 64 if slow; it returns how many it read in
// order, each one position after the last.
func catchUp(url, kind, tr string, n int, slow bool) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next func() ([]byte, error)
	switch tr {
	case "ws":
		c, err := benchWS(strings.TrimPrefix(url, "http://"))
		if err != nil {
			return 0, err
		}
		defer c.nc.Close()
		context.AfterFunc(ctx, func() { c.nc.Close() })
		c.send(`{"type":"connection_init"}`)
		if m, err := c.read(); err != nil || !bytes.Contains(m, []byte(`connection_ack`)) {
			return 0, fmt.Errorf("connection_init: %q %v", m, err)
		}
		sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": catchUpQuery(kind)}})
		c.sendLong(sub)
		next = func() ([]byte, error) {
			for {
				m, err := c.read()
				if err != nil || !bytes.HasPrefix(m, []byte(`{"type":"ping"`)) {
					return m, err
				}
				c.send(`{"type":"pong"}`) // else the server closes after two pings
			}
		}
	case "sse":
		body, _ := json.Marshal(map[string]any{"query": catchUpQuery(kind)})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("SSE: %s", resp.Status)
		}
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		next = func() ([]byte, error) {
			for {
				line, err := br.ReadSlice('\n')
				if err == bufio.ErrBufferFull {
					return nil, fmt.Errorf("an SSE line over 64 KiB")
				}
				if err != nil {
					return nil, err
				}
				if bytes.HasPrefix(line, []byte("data: ")) {
					return line, nil
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		m, err := next()
		if err != nil {
			return i, err
		}
		want := fmt.Appendf(nil, `"position":"%d"`, i+1)
		if !bytes.Contains(m[:min(len(m), 128)], want) {
			return i, fmt.Errorf("event %d: %.200s", i+1, m)
		}
		if slow && i%64 == 63 {
			time.Sleep(time.Millisecond)
		}
	}
	return n, nil
}

// sendLong writes a masked text frame of any length (with a zero mask).
func (c *benchConn) sendLong(msg []byte) {
	f := []byte{0x81, 0x80 | 126, byte(len(msg) >> 8), byte(len(msg)), 0, 0, 0, 0}
	if len(msg) < 126 {
		f = []byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0}
	}
	_, _ = c.nc.Write(append(f, msg...))
}
