// Package benchserver runs the hindsight binary for benchmark commands
// (cmd/imagebench, cmd/fanoutbench): it builds the binary, starts `hindsight
// devdb` and `hindsight serve` as child processes, each in its own process
// group so that stopping one stops everything it started, waits for /readyz,
// reads a process's memory and CPU time from /proc, scrapes /metrics and
// makes GraphQL requests over HTTP.
//
// It is test infrastructure: only benchmark commands import it, and it knows
// nothing of the server's internals, only its command line, environment
// variables and HTTP endpoints.
package benchserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build builds the hindsight binary (the module in the current directory)
// into dir and returns its path. The build's output goes to log.
func Build(ctx context.Context, dir string, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "hindsight")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/hindsight-dev/hindsight")
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("go build (run from the repository root, or pass -bin): %w", err)
	}
	return bin, nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Supervisor starts child processes and stops every one still running on
// StopAll, so that a benchmark leaves nothing behind, on an error or Ctrl-C
// as well.
type Supervisor struct {
	mu    sync.Mutex
	procs []*Process
}

// Process is a running child, the leader of its own process group.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string // its standard output and error

	done    chan struct{}
	waitErr error
	logFile *os.File
}

// Start starts bin with args as a child in a new process group. env is added
// to this process's environment, from which every HINDSIGHT_ variable is
// removed first, so the child sees only what the benchmark sets. Its output
// goes to logPath. If this process dies, the child gets SIGTERM.
func (s *Supervisor) Start(name, bin string, args, env []string, logPath string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, done: make(chan struct{}), logFile: f}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// StopAll stops every child still running, newest first (servers before the
// store they use).
func (s *Supervisor) StopAll() {
	s.mu.Lock()
	procs := slices.Clone(s.procs)
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop(30 * time.Second)
	}
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group and waits up to timeout for the
// process to exit, then kills the group. It returns the process's exit error,
// if any (a process ended by the SIGTERM counts as clean).
func (p *Process) Stop(timeout time.Duration) error {
	if !p.Exited() {
		terminateGroup(p.Cmd.Process)
		select {
		case <-p.done:
		case <-time.After(timeout):
			killGroup(p.Cmd.Process)
			<-p.done
			return fmt.Errorf("%s did not stop within %v after SIGTERM; killed", p.Name, timeout)
		}
	}
	// Anything left in the group (the child's own children) goes too.
	killGroup(p.Cmd.Process)
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return p.waitErr
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Memory returns a size field of /proc/PID/status (VmRSS, VmHWM, ...) in
// bytes.
func (p *Process) Memory(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.Cmd.Process.Pid)
}

// CPU returns the CPU time (user and system) the process has used.
func (p *Process) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// After the command name in parentheses: utime and stime are the 12th
	// and 13th fields, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", p.Cmd.Process.Pid, b)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// StartDevDB starts `hindsight devdb` on a free loopback port with its data in
// dataDir and waits until it accepts connections. It returns the process and
// the mongodb:// URI to reach it.
// env adds settings, e.g. HINDSIGHT_POSTGRESQL_URL to run the store on
// FerretDB's PostgreSQL handler.
func (s *Supervisor) StartDevDB(ctx context.Context, bin, dataDir, logPath string, env ...string) (*Process, string, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := s.Start("devdb", bin, []string{"devdb", "--addr", addr, "--data-dir", dataDir},
		append([]string{"HINDSIGHT_LOG_FORMAT=text", "HINDSIGHT_LOG_LEVEL=warn"}, env...), logPath)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, "mongodb://" + addr + "/", nil
		}
		select {
		case <-p.Done():
			return nil, "", fmt.Errorf("devdb exited before it listened:\n%s", p.Tail(20))
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("devdb not listening on %s after 60s:\n%s", addr, p.Tail(20))
		}
	}
}

// Server is a running `hindsight serve`.
type Server struct {
	*Process
	Base string // http://host:port
	// Ready is the time from starting the process to /readyz answering 200.
	Ready time.Duration
}

// StartServer starts `hindsight serve` on a free loopback port with env
// (HINDSIGHT_MONGODB_URI and the like; the address and a text log are set
// here) and waits up to timeout for /readyz to answer 200, polling every
// 10 ms.
func (s *Supervisor) StartServer(ctx context.Context, bin string, env []string, logPath string, timeout time.Duration) (*Server, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	env = append([]string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_LOG_FORMAT=text"}, env...)
	start := time.Now()
	p, err := s.Start("hindsight serve", bin, []string{"serve"}, env, logPath)
	if err != nil {
		return nil, err
	}
	srv := &Server{Process: p, Base: "http://" + addr}
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := start.Add(timeout)
	for {
		resp, err := hc.Get(srv.Base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				srv.Ready = time.Since(start)
				return srv, nil
			}
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("hindsight exited before it was ready:\n%s", p.Tail(20))
		case <-ctx.Done():
			p.Stop(10 * time.Second)
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop(10 * time.Second)
			return nil, fmt.Errorf("hindsight not ready after %v:\n%s", timeout, p.Tail(20))
		}
	}
}

// Client makes GraphQL requests over HTTP with one shared keep-alive client.
type Client struct {
	HTTP *http.Client
	Base string
}

// NewClient returns a client for the server at base (http://host:port) that
// keeps up to conns idle connections.
func NewClient(base string, conns int) *Client {
	return &Client{
		HTTP: &http.Client{Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute},
			Timeout: 2 * time.Minute},
		Base: base,
	}
}

// GraphQLError is a response with errors, or a status other than 200.
type GraphQLError struct {
	Status int
	Body   string
}

func (e *GraphQLError) Error() string {
	b := e.Body
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return fmt.Sprintf("POST /graphql: %d %s", e.Status, b)
}

// Do posts a GraphQL operation and decodes its data into data (if not nil).
// A transport error, a status other than 200 or any GraphQL error is an
// error.
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, data any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Data   json.RawMessage
		Errors []json.RawMessage
	}
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		return &GraphQLError{Status: resp.StatusCode, Body: string(b)}
	}
	if data == nil {
		return nil
	}
	return json.Unmarshal(r.Data, data)
}

// Metrics are the samples of a Prometheus text exposition, by series (the
// metric name plus its labels as written, e.g. `x_total{source="memory"}`).
type Metrics map[string]float64

// Metrics scrapes /metrics.
func (c *Client) Metrics(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text format.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series, after the closing brace of the
		// labels if there are any; a timestamp may follow the value.
		rest := line
		series := ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			series, rest = line[:j+1], line[j+1:]
		} else {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			series, rest = f[0], strings.Join(f[1:], " ")
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		m[series] = v
	}
	return m, sc.Err()
}

// Get returns the sum of every series of the metric name, and whether there
// was any.
func (m Metrics) Get(name string) (float64, bool) {
	var sum float64
	found := false
	for series, v := range m {
		if series == name || (strings.HasPrefix(series, name) && len(series) > len(name) && series[len(name)] == '{') {
			sum += v
			found = true
		}
	}
	return sum, found
}

// Percentile sorts d and returns its p-th percentile (nearest rank); 0 for
// none.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}
