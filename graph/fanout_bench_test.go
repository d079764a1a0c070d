package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
// The subscribers read frames themselves (benchWS), as cmd/fanoutbench's do:
// a websocket library's reader costs about as much CPU per message as the
// server spends sending it, which would hide the server's share.
//
// One iteration appends one event and waits until every subscriber has it:
// one event per wake-up, the case batching cannot help. Wall time per
// delivery includes the wake-up window and the websocket flush delay (an
// event appended soon after the previous one is held for them), so the
// figure to compare is cpu-ns/delivery: the CPU time of the whole process,
// server and clients, per delivery. cmd/fanoutbench measures fan-out under
// a steady rate, in separate processes.
//
// To compare with the code before issue 16 (81917e6) in one sitting, run this
// same file there (its subscribers do not depend on the server's code; only
// the per-principal caps, which did not exist, are dropped):
//
//	git archive 81917e6 | (mkdir -p /tmp/before && tar -x -C /tmp/before)
//	sed 's/, Streams: graph.StreamLimits{[^}]*}//' graph/fanout_bench_test.go > /tmp/before/graph/fanout_bench_test.go
//	(cd /tmp/before && go test ./graph -run '^$' -bench 'Fanout/1000' -benchtime 100x)
//	go test ./graph -run '^$' -bench 'Fanout/1000' -benchtime 100x
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	mc, db := storetest.Client(b)
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	store := storetest.Store(b, mc, db)
	ep := graph.NewEndpoint(graph.EndpointConfig{Resolver: &graph.Resolver{Store: store, Log: log}, Log: log,
		MaxStreams: 2 * n, Streams: graph.StreamLimits{MaxConnectionsPerPrincipal: 2 * n, MaxSubscriptionsPerPrincipal: 2 * n, MaxPendingPerAddr: 2 * n}})
	mux := http.NewServeMux()
	mux.Handle("/graphql", ep)
	srv := httptest.NewServer(mux)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = ep.Shutdown(ctx)
		srv.Close()
	})

	var got atomic.Int64 // deliveries of the current event
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	host := srv.Listener.Addr().String()
	for i := 0; i < n; i++ {
		c, err := benchWS(host)
		if err != nil {
			b.Fatal(err)
		}
		defer c.nc.Close()
		c.send(`{"type":"connection_init"}`)
		if m, err := c.read(); err != nil || !bytes.Contains(m, []byte("connection_ack")) {
			b.Fatalf("connection_init: %s %v", m, err)
		}
		c.send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { events { position recordedAt } }"}}`)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := c.read()
				if err != nil {
					return
				}
				if bytes.Contains(m, []byte(`"next"`)) {
					got.Add(1)
				}
			}
		}()
	}
	go func() { <-ctx.Done(); srv.CloseClientConnections() }()
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

// benchWS is a websocket client that reads frames itself, with one buffer.
type benchConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
}

func benchWS(host string) (*benchConn, error) {
	nc, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET /graphql HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n", host)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("handshake: %v %v", resp, err)
	}
	return &benchConn{nc: nc, br: br, buf: make([]byte, 0, 512)}, nil
}

// send writes a masked text frame (with a zero mask, which leaves the
// payload as it is).
func (c *benchConn) send(msg string) {
	f := []byte{0x81, 0x80 | byte(len(msg)), 0, 0, 0, 0} // every message here is under 126 bytes
	_, _ = c.nc.Write(append(f, msg...))
}

// read returns the next message's payload, valid until the next read.
func (c *benchConn) read() ([]byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(c.br, h[:2]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.br, h[:2]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, h[:8]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint64(h[:8]))
	}
	c.buf = slices.Grow(c.buf[:0], n)[:n]
	_, err := io.ReadFull(c.br, c.buf)
	return c.buf, err
}
