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
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/internal/benchserver"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// BenchmarkFanout measures what one event costs the server to deliver to
// many websocket subscribers of the same live `events` subscription:
//
//	go test ./graph -run '^$' -bench Fanout -benchtime 200x -cpuprofile cpu.out
//
// The subscribers run in a child process (this test binary again, as
// TestFanoutBenchClients), so that the server's CPU is measured, and
// profiled, alone. They read frames themselves (benchWS), as
// cmd/fanoutbench's do: a websocket library's reader costs about as much CPU
// per message as the server spends sending it.
//
// One iteration appends one event and waits until every subscriber has it:
// one event per wake-up, the case batching cannot help. It reports:
//
//   - cpu-ns/delivery: the CPU time (user and system) of the server's
//     process per delivery: the endpoint, the event store and the embedded
//     FerretDB that the append goes through, and the kernel's work in the
//     server's socket writes (on loopback that includes handing the bytes to
//     the client's socket). The client process is not in it.
//   - total-cpu-ns/delivery: the same plus the client process's CPU, server
//     and clients together. It is not what this benchmark reported as
//     cpu-ns/delivery while the clients ran in the server's process: there
//     one runtime woke up per event, here two do, and the total came out
//     about a quarter higher (29 µs against 23 µs at 1,000 subscribers, in
//     one sitting). The "40 µs before" of issue 16 was that in-process
//     figure with coder/websocket clients, whose reader costs more.
//   - ns/delivery: wall time per delivery, which includes the wake-up
//     window (an event appended soon after the previous one waits for its
//     group's turn, see eventstore's wake.go), so it is not a cost.
//
// cmd/fanoutbench measures fan-out under a steady rate.
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
	_, srv := serveEndpoint(b, graph.EndpointConfig{Resolver: &graph.Resolver{Store: store, Log: log}, Log: log,
		MaxStreams: 2 * n, Streams: graph.StreamLimits{MaxConnectionsPerPrincipal: 2 * n, MaxSubscriptionsPerPrincipal: 2 * n, MaxPendingPerAddr: 2 * n}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := startBenchClients(b, srv.Listener.Addr().String(), n)

	appendOne := func() int64 {
		res, err := store.Append(ctx, "bench", eventstore.Any{}, eventstore.NewEvent{Type: "X", Data: json.RawMessage(`{}`)})
		if err != nil {
			b.Fatal(err)
		}
		return res.LastPosition
	}
	// Every subscription is live once it has received an event.
	for warm := false; !warm; {
		warm = clients.wait(appendOne(), 200*time.Millisecond) == n
	}
	b.ResetTimer()
	cpu0, clientCPU0 := benchserver.SelfCPU(), clients.cpu()
	for i := 0; i < b.N; i++ {
		if got := clients.wait(appendOne(), time.Minute); got != n {
			b.Fatalf("%d of %d subscribers got the event", got, n)
		}
	}
	b.StopTimer()
	cpu, clientCPU := benchserver.SelfCPU()-cpu0, clients.cpu()-clientCPU0
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / float64(n) }
	b.ReportMetric(per(b.Elapsed()), "ns/delivery")
	b.ReportMetric(per(cpu), "cpu-ns/delivery")
	b.ReportMetric(per(cpu+clientCPU), "total-cpu-ns/delivery")
}

// envBenchClients makes this test binary the subscribers' process of
// BenchmarkFanout (TestFanoutBenchClients): "HOST N".
const envBenchClients = "HINDSIGHT_FANOUT_BENCH_CLIENTS"

// benchClients drives the subscribers' process: commands go to its standard
// input, answers come back on a pipe of their own (the test framework writes
// to standard output).
type benchClients struct {
	tb  testing.TB
	in  io.Writer
	out *bufio.Reader
}

func startBenchClients(tb testing.TB, host string, n int) *benchClients {
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanoutBenchClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", envBenchClients, host, n))
	var log bytes.Buffer // the test framework's report, shown if the process fails
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.ExtraFiles = []*os.File{w}
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	tb.Cleanup(func() {
		in.Close() // the process ends at the end of its input
		if err := cmd.Wait(); err != nil {
			tb.Errorf("subscribers: %v\n%s", err, log.String())
		}
		r.Close()
	})
	c := &benchClients{tb: tb, in: in, out: bufio.NewReader(r)}
	if line := c.ask("ready"); line != "ready" {
		tb.Fatalf("subscribers: %s", line)
	}
	return c
}

// ask sends a command and returns the answer.
func (c *benchClients) ask(cmd string) string {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		c.tb.Fatalf("subscribers: %v", err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.tb.Fatalf("subscribers: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

// wait returns how many subscribers have received the event at pos, once all
// have or after timeout.
func (c *benchClients) wait(pos int64, timeout time.Duration) int {
	got, err := strconv.Atoi(c.ask(fmt.Sprintf("wait %d %d", pos, timeout)))
	if err != nil {
		c.tb.Fatal(err)
	}
	return got
}

// cpu is the CPU time the subscribers' process has used.
func (c *benchClients) cpu() time.Duration {
	ns, err := strconv.ParseInt(c.ask("cpu"), 10, 64)
	if err != nil {
		c.tb.Fatal(err)
	}
	return time.Duration(ns)
}

// TestFanoutBenchClients is BenchmarkFanout's subscribers' process; without
// envBenchClients it does nothing. It connects N websocket clients to HOST,
// each with one `events` subscription, answers "ready" to "ready", and to
// "wait POS TIMEOUT" the number of clients that have received the event at
// POS (all of them, or as many as had after TIMEOUT), and to "cpu" its CPU
// time in nanoseconds, until its input ends.
func TestFanoutBenchClients(t *testing.T) {
	var host string
	var n int
	if _, err := fmt.Sscan(os.Getenv(envBenchClients), &host, &n); err != nil {
		t.Skip("the subscribers' process of BenchmarkFanout")
	}
	reply := os.NewFile(3, "reply")
	// A wait is a round: every client counts itself once, when it has the
	// event, so that nothing polls. seen and counted let the waiter count
	// the clients that had it before the round began; whichever of the two
	// swaps counted first counts the client.
	type round struct {
		pos  int64
		left atomic.Int64
		done chan struct{}
	}
	var cur atomic.Pointer[round]
	seen := make([]atomic.Int64, n) // the last position each client received
	counted := make([]atomic.Pointer[round], n)
	count := func(i int, r *round) {
		if counted[i].Swap(r) != r && r.left.Add(-1) == 0 {
			close(r.done)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		c, err := benchWS(host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		c.send(`{"type":"connection_init"}`)
		if m, err := c.read(); err != nil || !bytes.Contains(m, []byte("connection_ack")) {
			t.Fatalf("connection_init: %s %v", m, err)
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
				_, p, ok := bytes.Cut(m, []byte(`"position":`))
				if !ok {
					continue
				}
				p = bytes.TrimPrefix(p, []byte(`"`)) // a Position is a string
				k := 0
				for k < len(p) && p[k] >= '0' && p[k] <= '9' {
					k++
				}
				pos, _ := strconv.ParseInt(string(p[:k]), 10, 64)
				seen[i].Store(pos)
				if r := cur.Load(); r != nil && pos >= r.pos {
					count(i, r)
				}
			}
		}()
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var answer string
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "ready":
			answer = "ready"
		case len(f) == 1 && f[0] == "cpu":
			answer = strconv.FormatInt(benchserver.SelfCPU().Nanoseconds(), 10)
		case len(f) == 3 && f[0] == "wait":
			r := &round{done: make(chan struct{})}
			r.pos, _ = strconv.ParseInt(f[1], 10, 64)
			timeout, _ := strconv.ParseInt(f[2], 10, 64)
			r.left.Store(int64(n))
			cur.Store(r)
			for i := range seen {
				if seen[i].Load() >= r.pos {
					count(i, r)
				}
			}
			select {
			case <-r.done:
			case <-time.After(time.Duration(timeout)):
			}
			answer = strconv.FormatInt(int64(n)-r.left.Load(), 10)
		default:
			t.Fatalf("unknown command %q", in.Text())
		}
		if _, err := fmt.Fprintln(reply, answer); err != nil {
			t.Fatal(err)
		}
	}
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
