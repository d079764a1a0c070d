package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// BenchmarkFanout measures what one event costs to deliver to many websocket
// subscribers of the same live `events` subscription, in process, so that a
// CPU profile shows the server's share of fan-out (the clients here read
// with little work, but they share the profile):
//
//	go test ./graph -run '^$' -bench Fanout -benchtime 200x -cpuprofile cpu.out
//
// One iteration appends one event and waits until every subscriber has it:
// one event per wake-up, the case batching cannot help. Wall time per
// delivery includes the wake-up window and the websocket flush delay (an
// event appended soon after the previous one is held for them), so the
// figure to compare is cpu-ns/delivery: the CPU time of the whole process,
// server and clients, per delivery. cmd/fanoutbench measures fan-out under
// a steady rate, in separate processes.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	mc, db := storetest.Client(b)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	store := storetest.Store(b, mc, db)
	ep := graph.NewEndpoint(graph.EndpointConfig{Resolver: &graph.Resolver{Store: store, Log: log}, Log: log})
	mux := http.NewServeMux()
	mux.Handle("/graphql", ep)
	srv := httptest.NewServer(mux)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		srv.Close()
	})
	url := "ws" + srv.URL[len("http"):] + "/graphql"

	var got atomic.Int64 // deliveries of the current event
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := 0; i < n; i++ {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init"}`))
		if _, m, err := c.Read(ctx); err != nil || !bytes.Contains(m, []byte("connection_ack")) {
			b.Fatalf("connection_init: %s %v", m, err)
		}
		sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
			"query": `subscription { events { position recordedAt } }`}})
		_ = c.Write(ctx, websocket.MessageText, sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, m, err := c.Read(ctx)
				if err != nil {
					return
				}
				if bytes.Contains(m, []byte(`"next"`)) {
					got.Add(1)
				}
			}
		}()
	}
	// Every subscription is live once it has received an event.
	appendOne := func() {
		got.Store(0)
		if _, err := store.Append(ctx, "bench", eventstore.Any{}, eventstore.NewEvent{Type: "X", Data: json.RawMessage(`{}`)}); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for got.Load() < int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d subscribers got the event", got.Load(), n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	for warm := false; !warm; {
		got.Store(0)
		if _, err := store.Append(ctx, "bench", eventstore.Any{}, eventstore.NewEvent{Type: "X", Data: json.RawMessage(`{}`)}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		warm = got.Load() == int64(n)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		appendOne()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/delivery")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
