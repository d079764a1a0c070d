// Package e2e tests the built hindsight binary from the outside: its
// defaults, its command line, its HTTP endpoints and its shutdown.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// bin is the hindsight binary, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hindsight-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "hindsight")
	build := exec.Command("go", "build", "-o", bin, "..")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hindsight:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	printSummary(os.Stdout)
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running hindsight process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	stdout *bufio.Reader
	done   chan struct{}
	err    error
}

// start runs the binary with args in dir, with the environment cleared of
// HINDSIGHT_ variables except those given.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p := &proc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %v log:\n%s", filepath.Base(bin), args, p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit with code 0.
func (p *proc) stop(timeout time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("no exit %v after SIGTERM", timeout)
	}
	if p.err != nil {
		p.t.Fatalf("exit after SIGTERM: %v", p.err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, p *proc, base string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable || !json.Valid(body) {
				t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("exited before ready: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 90s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// graphql posts an operation and returns data and errors.
func graphql(t *testing.T, base, query string, vars map[string]any) (map[string]any, []any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(base+"/graphql", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return r.Data, r.Errors
}

const appendOne = `mutation($s: String!) {
	appendToStream(streamId: $s, events: [{type: "Greeted", data: {hello: "world"}}]) { nextExpectedVersion firstPosition }
}`

// TestServeWithDefaults starts the server as `go run .` would, on an empty
// working directory (so ./data is fresh), waits for /readyz, appends over
// HTTP, stops it with SIGTERM (exit code 0), and starts it again to find the
// event still there.
func TestServeWithDefaults(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, dir, []string{"HINDSIGHT_ADDR=" + addr})
	waitReady(t, p, base)

	data, errs := graphql(t, base, appendOne, map[string]any{"s": "greetings"})
	if len(errs) > 0 {
		t.Fatalf("append: %v", errs)
	}
	res := data["appendToStream"].(map[string]any)
	if res["nextExpectedVersion"] != float64(1) || res["firstPosition"] != "1" {
		t.Fatalf("append result %v", res)
	}
	for path, want := range map[string]string{
		"/":        "graphiql",
		"/healthz": `"ok"`,
		"/metrics": "hindsight_head_position 1",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(want)) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if !strings.Contains(p.stderr.String(), "http://"+addr+"/") {
		t.Errorf("the start log does not give the URL to open:\n%s", p.stderr.String())
	}
	p.stop(30 * time.Second)
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Errorf("the embedded store did not use ./data: %v", err)
	}

	// Restart on the same data directory: the event is still there.
	p = start(t, dir, []string{"HINDSIGHT_ADDR=" + addr})
	waitReady(t, p, base)
	data, errs = graphql(t, base, `{ stream(id: "greetings") { version state } headPosition }`, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	st := data["stream"].(map[string]any)
	if st["version"] != float64(1) || data["headPosition"] != "1" {
		t.Errorf("after restart: %v", data)
	}
	p.stop(30 * time.Second)
}

// TestDevdbSharedByServe runs `hindsight devdb`, points two servers at the
// URI it prints, and checks that a subscriber on one gets, in order, what is
// appended through the other, and that a read at the position a write
// returned sees it on the other instance. Then it stops all three cleanly.
func TestDevdbSharedByServe(t *testing.T) {
	dir := t.TempDir()
	dbAddr := freeAddr(t)
	db := start(t, dir, nil, "devdb", "--addr", dbAddr, "--data-dir", filepath.Join(dir, "db"))
	uriCh := make(chan string, 1)
	go func() {
		line, _ := db.stdout.ReadString('\n')
		uriCh <- strings.TrimSpace(line)
	}()
	var uri string
	select {
	case uri = <-uriCh:
	case <-time.After(60 * time.Second):
		t.Fatal("devdb printed no URI")
	}
	if !strings.HasPrefix(uri, "mongodb://") || !strings.Contains(uri, dbAddr) {
		t.Fatalf("devdb printed %q", uri)
	}

	var bases []string
	var procs []*proc
	for i := 0; i < 2; i++ {
		addr := freeAddr(t)
		p := start(t, dir, []string{"HINDSIGHT_MONGODB_URI=" + uri, "HINDSIGHT_DATABASE=e2e"}, "serve", "--addr", addr)
		procs = append(procs, p)
		bases = append(bases, "http://"+addr)
	}
	for i, p := range procs {
		waitReady(t, p, bases[i])
	}

	// Subscribe on B over SSE, append through A.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body := `{"query":"subscription { events(afterPosition: \"0\", streamPrefix: \"shared-\") { position streamId } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, bases[1]+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const n = 20
	var last string
	for i := 0; i < n; i++ {
		data, errs := graphql(t, bases[0], appendOne, map[string]any{"s": fmt.Sprintf("shared-%d", i%3)})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		last = data["appendToStream"].(map[string]any)["firstPosition"].(string)
	}
	sse := bufio.NewReader(resp.Body)
	var got []string
	for len(got) < n {
		line, err := sse.ReadString('\n')
		if err != nil {
			t.Fatalf("sse after %d events: %v", len(got), err)
		}
		if p, ok := strings.CutPrefix(line, "data: "); ok {
			var m struct {
				Data struct{ Events struct{ Position string } }
			}
			if err := json.Unmarshal([]byte(p), &m); err != nil {
				t.Fatalf("sse data %q: %v", p, err)
			}
			got = append(got, m.Data.Events.Position)
		}
	}
	for i, p := range got {
		if p != fmt.Sprint(i+1) {
			t.Fatalf("instance B delivered positions %v; want 1..%d in order", got, n)
		}
	}
	// Read your writes on the other instance: at the write's position.
	data, errs := graphql(t, bases[1], `query($p: Position) { stream(id: "shared-1") { version } s: stream(id: "shared-1") { state(at: {position: $p}) } }`,
		map[string]any{"p": last})
	if len(errs) > 0 || data["stream"] == nil {
		t.Fatalf("read on B: %v %v", data, errs)
	}
	cancel()

	for _, p := range procs {
		p.stop(30 * time.Second)
	}
	db.stop(30 * time.Second)
}

// TestShutdownWithOpenSubscriptions: SIGTERM closes a websocket with 1001
// (going away, so that clients reconnect and resume), completes an SSE
// stream, and exits 0 promptly instead of waiting for them.
func TestShutdownWithOpenSubscriptions(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, dir, []string{"HINDSIGHT_ADDR=" + addr})
	waitReady(t, p, base)
	if _, errs := graphql(t, base, appendOne, map[string]any{"s": "s"}); len(errs) > 0 {
		t.Fatal(errs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for _, m := range []string{
		`{"type":"connection_init"}`,
		`{"id":"1","type":"subscribe","payload":{"query":"subscription { events(afterPosition: \"0\") { position } }"}}`,
	} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	readWS := func() (string, error) {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return "", err
			}
			if !strings.Contains(string(b), `"ping"`) && !strings.Contains(string(b), `"pong"`) {
				return string(b), nil
			}
		}
	}
	for _, want := range []string{"connection_ack", `"position":"1"`} {
		if m, err := readWS(); err != nil || !strings.Contains(m, want) {
			t.Fatalf("websocket: got %q, %v; want %s", m, err, want)
		}
	}

	body := `{"query":"subscription { events(afterPosition: \"0\") { position } }"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewReader(resp.Body)
	for {
		line, err := sse.ReadString('\n')
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		if strings.Contains(line, `"position":"1"`) {
			break
		}
	}

	// Read on, as a client does, so that the close handshake completes.
	wsErr := make(chan error, 1)
	go func() {
		_, err := readWS()
		wsErr <- err
	}()
	stopped := time.Now()
	p.stop(30 * time.Second)
	if d := time.Since(stopped); d > 5*time.Second {
		t.Errorf("shutdown took %v with open subscriptions", d)
	}
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("websocket closed with %v, want 1001", err)
	}
	rest, _ := io.ReadAll(sse)
	if !strings.Contains(string(rest), "event: complete") {
		t.Errorf("sse stream ended with %q, want a complete event", rest)
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		env  []string
		code int
		out  string
	}{
		{[]string{"version"}, nil, 0, "hindsight"},
		{[]string{"nope"}, nil, 2, ""},
		{[]string{"serve", "--addr", "not-an-address"}, nil, 2, ""},
		{nil, []string{"HINDSIGHT_MEMORY_BUDGET=lots"}, 2, ""},
	} {
		var stdout bytes.Buffer
		cmd := exec.Command(bin, c.args...)
		cmd.Dir = dir
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.env...)
		cmd.Stdout = &stdout
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(stdout.String(), c.out) {
			t.Errorf("%v %v: exit %d, stdout %q; want %d, %q", c.env, c.args, code, stdout.String(), c.code, c.out)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
