package e2e

// The harness of the scenarios in scenarios_test.go: processes (servers and
// devdb) that can be killed and restarted on the same address, a GraphQL
// client that never calls t.Fatal (so writers can run in goroutines), a
// ledger of appends with client-chosen event ids, subscribers over the three
// transports, and the summary table printed by TestMain.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// ---------------------------------------------------------------------------
// Summary table.

// scenarioStats are the counters of one scenario for the summary table.
type scenarioStats struct {
	name      string
	written   atomic.Int64 // events acknowledged to a writer
	delivered atomic.Int64 // events received by subscribers
	anomalies atomic.Int64 // broken guarantees (each is also a test error)
}

var summary struct {
	mu   sync.Mutex
	rows []*scenarioStats
}

func newScenario(name string) *scenarioStats {
	s := &scenarioStats{name: name}
	summary.mu.Lock()
	summary.rows = append(summary.rows, s)
	summary.mu.Unlock()
	return s
}

// anomaly records a broken guarantee and fails the test.
func (s *scenarioStats) anomaly(t *testing.T, format string, args ...any) {
	t.Helper()
	s.anomalies.Add(1)
	t.Errorf(format, args...)
}

// printSummary writes the summary table, if any scenario ran.
func printSummary(w io.Writer) {
	summary.mu.Lock()
	defer summary.mu.Unlock()
	if len(summary.rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-28s %8s %10s %10s\n", "scenario", "written", "delivered", "anomalies")
	var w0, d0, a0 int64
	for _, r := range summary.rows {
		fmt.Fprintf(w, "%-28s %8d %10d %10d\n", r.name, r.written.Load(), r.delivered.Load(), r.anomalies.Load())
		w0, d0, a0 = w0+r.written.Load(), d0+r.delivered.Load(), a0+r.anomalies.Load()
	}
	fmt.Fprintf(w, "%-28s %8d %10d %10d\n", "total", w0, d0, a0)
}

// ---------------------------------------------------------------------------
// Processes.

// server is a `hindsight serve` process that can be killed and restarted on
// the same address and settings.
type server struct {
	t    *testing.T
	name string
	dir  string
	env  []string
	addr string
	base string
	p    *proc
}

// startServer starts `serve` on a free loopback port in dir (so the embedded
// store, if used, lives in dir/data). Call waitReady (or startServers) before
// use.
func startServer(t *testing.T, name, dir string, env []string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{t: t, name: name, dir: dir, env: env, addr: addr, base: "http://" + addr}
	s.p = start(t, dir, env, "serve", "--addr", addr)
	return s
}

// startServers starts n servers sharing env and waits until all are ready.
func startServers(t *testing.T, dir string, env []string, names ...string) []*server {
	t.Helper()
	var out []*server
	for _, n := range names {
		out = append(out, startServer(t, n, dir, env))
	}
	for _, s := range out {
		waitReady(t, s.p, s.base)
	}
	return out
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	_ = s.p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.p.done:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s survived SIGKILL", s.name)
	}
}

// restart starts the server again on the same address and waits until ready.
func (s *server) restart() {
	s.t.Helper()
	s.p = start(s.t, s.dir, s.env, "serve", "--addr", s.addr)
	waitReady(s.t, s.p, s.base)
}

// devdbProc is a `hindsight devdb` process.
type devdbProc struct {
	t       *testing.T
	dir     string
	addr    string
	dataDir string
	uri     string
	p       *proc
}

func startDevdb(t *testing.T, dir string) *devdbProc {
	t.Helper()
	d := &devdbProc{t: t, dir: dir, addr: freeAddr(t), dataDir: filepath.Join(dir, "devdb")}
	d.start()
	return d
}

// start runs devdb on d.addr and d.dataDir and waits for the URI it prints.
func (d *devdbProc) start() {
	d.t.Helper()
	d.p = start(d.t, d.dir, nil, "devdb", "--addr", d.addr, "--data-dir", d.dataDir)
	uriCh := make(chan string, 1)
	stdout := d.p.stdout
	go func() {
		line, _ := stdout.ReadString('\n')
		uriCh <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case uri := <-uriCh:
		if !strings.HasPrefix(uri, "mongodb://") {
			d.t.Fatalf("devdb printed %q", uri)
		}
		d.uri = uri
	case <-time.After(60 * time.Second):
		d.t.Fatal("devdb printed no URI")
	}
}

func (d *devdbProc) kill() {
	d.t.Helper()
	_ = d.p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.p.done:
	case <-time.After(10 * time.Second):
		d.t.Fatal("devdb survived SIGKILL")
	}
}

// env is the environment of a serve process on this store.
func (d *devdbProc) env() []string {
	return []string{"HINDSIGHT_MONGODB_URI=" + d.uri, "HINDSIGHT_DATABASE=e2e"}
}

// ---------------------------------------------------------------------------
// GraphQL over HTTP.

// httpClient is for requests and responses; streamClient (no overall
// timeout) is for SSE.
var (
	httpClient = &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}
	streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
)

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// gqlResponse is a decoded GraphQL response with its HTTP status.
type gqlResponse struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	Raw    []byte
}

// code is the code of the first error, or "".
func (r *gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].code()
}

// ok reports whether the response has data and no errors.
func (r *gqlResponse) ok() bool {
	return r.Status == http.StatusOK && len(r.Errors) == 0 && len(r.Data) > 0 && string(r.Data) != "null"
}

func (r *gqlResponse) String() string {
	if len(r.Raw) > 400 {
		return fmt.Sprintf("%d %s...", r.Status, r.Raw[:400])
	}
	return fmt.Sprintf("%d %s", r.Status, r.Raw)
}

// post sends a GraphQL operation. A transport error (no response) is
// returned as error; every response is decoded.
func post(ctx context.Context, base, query string, vars map[string]any) (*gqlResponse, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	return postRaw(ctx, base, "application/json", body)
}

func postRaw(ctx context.Context, base, contentType string, body []byte) (*gqlResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return doRequest(req)
}

func doRequest(req *http.Request) (*gqlResponse, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the response (status %d): %w", resp.StatusCode, err)
	}
	r := &gqlResponse{Status: resp.StatusCode, Raw: raw}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, &badResponse{status: resp.StatusCode, body: truncate(raw)}
	}
	return r, nil
}

// badResponse is a response that is not a GraphQL response.
type badResponse struct {
	status int
	body   string
}

func (e *badResponse) Error() string {
	return fmt.Sprintf("status %d, body not JSON: %q", e.status, e.body)
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// must runs an operation that must succeed and decodes its data into out
// (if not nil).
func must(t *testing.T, base, query string, vars map[string]any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := post(ctx, base, query, vars)
	if err != nil {
		t.Fatalf("%s: %v", firstLine(query), err)
	}
	if !r.ok() {
		t.Fatalf("%s: %s", firstLine(query), r)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("%s: decode %s: %v", firstLine(query), r.Data, err)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// headPosition asks a server for its head position.
func headPosition(t *testing.T, base string) int64 {
	t.Helper()
	var d struct{ HeadPosition string }
	must(t, base, `{ headPosition }`, nil, &d)
	return atoi(t, d.HeadPosition)
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("position %q: %v", s, err)
	}
	return n
}

// waitHeads waits until every server's headPosition is at least want.
func waitHeads(t *testing.T, want int64, timeout time.Duration, servers ...*server) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range servers {
		for {
			h := headPosition(t, s.base)
			if h >= want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: headPosition %d after %v, want %d", s.name, h, timeout, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------------------
// The global log.

// logEvent is an event as the API shows it, in the log or in a subscription.
type logEvent struct {
	ID       string `json:"id"`
	StreamID string `json:"streamId"`
	Version  int    `json:"version"`
	Position string `json:"position"`
	Type     string `json:"type"`
}

func (e logEvent) pos() int64 {
	n, _ := strconv.ParseInt(e.Position, 10, 64)
	return n
}

const eventFields = `id streamId version position type`

// readLog reads the whole global log of a server, page by page.
func readLog(t *testing.T, base string) []logEvent {
	t.Helper()
	var out []logEvent
	after := "0"
	for {
		var d struct {
			Events struct {
				Edges []struct{ Node logEvent }
			}
		}
		must(t, base, `query($a: Position) { events(afterPosition: $a, first: 1000) { edges { node { `+eventFields+` } } } }`,
			map[string]any{"a": after}, &d)
		if len(d.Events.Edges) == 0 {
			return out
		}
		for _, e := range d.Events.Edges {
			out = append(out, e.Node)
		}
		after = out[len(out)-1].Position
	}
}

// checkLog checks the shape of a global log: positions 1..N without gaps or
// duplicates, unique event ids, and each stream's versions 1..v in position
// order.
func checkLog(t *testing.T, st *scenarioStats, name string, log []logEvent) {
	t.Helper()
	ids := map[string]int64{}
	versions := map[string]int{}
	for i, e := range log {
		if e.pos() != int64(i+1) {
			st.anomaly(t, "%s: log entry %d has position %s, want %d", name, i, e.Position, i+1)
			return
		}
		if p, dup := ids[e.ID]; dup {
			st.anomaly(t, "%s: event id %s at positions %d and %d", name, e.ID, p, e.pos())
		}
		ids[e.ID] = e.pos()
		if e.Version != versions[e.StreamID]+1 {
			st.anomaly(t, "%s: stream %s has version %d at position %s after version %d", name, e.StreamID, e.Version, e.Position, versions[e.StreamID])
		}
		versions[e.StreamID] = e.Version
	}
}

// sameLog checks that two servers show the same log.
func sameLog(t *testing.T, st *scenarioStats, nameA string, a []logEvent, nameB string, b []logEvent) {
	t.Helper()
	if len(a) != len(b) {
		st.anomaly(t, "%s shows %d events, %s shows %d", nameA, len(a), nameB, len(b))
		return
	}
	for i := range a {
		if a[i] != b[i] {
			st.anomaly(t, "position %d: %s shows %+v, %s shows %+v", i+1, nameA, a[i], nameB, b[i])
			return
		}
	}
}

// streamVersions returns the version of every stream in a log.
func streamVersions(log []logEvent) map[string]int {
	v := map[string]int{}
	for _, e := range log {
		v[e.StreamID] = e.Version
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---------------------------------------------------------------------------
// Appends with client-chosen ids, and their outcomes.

// outcome is what a writer saw of one append.
type outcome struct {
	Writer   string
	Server   string
	StreamID string
	IDs      []string
	Events   []map[string]any // as sent, for a retry
	Started  time.Time
	Took     time.Duration

	Acked       bool
	First, Last int64  // positions, when acked
	Version     int    // nextExpectedVersion, when acked
	Code        string // extensions.code of a failed append
	Status      int    // HTTP status, 0 for a transport error
	Err         string // transport error or error message
}

func (o *outcome) String() string {
	if o.Acked {
		return fmt.Sprintf("%s via %s: %s %d events acked at %d..%d", o.Writer, o.Server, o.StreamID, len(o.IDs), o.First, o.Last)
	}
	return fmt.Sprintf("%s via %s: %s %d events failed after %v: status %d code %q: %s", o.Writer, o.Server, o.StreamID, len(o.IDs), o.Took.Round(time.Millisecond), o.Status, o.Code, o.Err)
}

const appendMutation = `mutation($s: String!, $e: [NewEvent!]!) {
	appendToStream(streamId: $s, events: $e) { nextExpectedVersion firstPosition lastPosition events { id position } }
}`

// newAppend makes k events with fresh ids, each with pad bytes of padding.
func newAppend(writer, stream string, k, pad int) ([]string, []map[string]any) {
	ids := make([]string, k)
	evs := make([]map[string]any, k)
	for j := range ids {
		ids[j] = uuid.NewString()
		data := map[string]any{"writer": writer, "j": j}
		if pad > 0 {
			data["pad"] = strings.Repeat("p", pad)
		}
		evs[j] = map[string]any{"id": ids[j], "type": "Tick", "data": data}
	}
	return ids, evs
}

// appendEvents sends one append of the given events and reports the outcome.
func appendEvents(ctx context.Context, base, server, writer, stream string, ids []string, evs []map[string]any) *outcome {
	o := &outcome{Writer: writer, Server: server, StreamID: stream, IDs: ids, Events: evs, Started: time.Now()}
	r, err := post(ctx, base, appendMutation, map[string]any{"s": stream, "e": evs})
	o.Took = time.Since(o.Started)
	switch {
	case err != nil:
		o.Err = err.Error()
		var bad *badResponse
		if errors.As(err, &bad) {
			o.Status = bad.status
		}
	case r.ok():
		var d struct {
			AppendToStream struct {
				NextExpectedVersion         int
				FirstPosition, LastPosition string
				Events                      []struct{ ID, Position string }
			}
		}
		if err := json.Unmarshal(r.Data, &d); err != nil {
			o.Status, o.Err = r.Status, err.Error()
			return o
		}
		a := d.AppendToStream
		o.Acked, o.Status, o.Version = true, r.Status, a.NextExpectedVersion
		o.First, _ = strconv.ParseInt(a.FirstPosition, 10, 64)
		o.Last, _ = strconv.ParseInt(a.LastPosition, 10, 64)
		if len(a.Events) != len(ids) {
			o.Err = fmt.Sprintf("acked with %d events, sent %d", len(a.Events), len(ids))
		}
		for i, e := range a.Events {
			if i < len(ids) && e.ID != ids[i] {
				o.Err = fmt.Sprintf("acked event %d with id %s, sent %s", i, e.ID, ids[i])
			}
		}
	default:
		o.Status, o.Code = r.Status, r.code()
		if len(r.Errors) > 0 {
			o.Err = r.Errors[0].Message
		} else {
			o.Err = r.String()
		}
	}
	return o
}

// ledger collects the outcomes of every append the writers tried.
type ledger struct {
	mu       sync.Mutex
	outcomes []*outcome
	orders   []orderWrite
}

// orderWrite is an acknowledged order command: its event is version Version
// of stream Stream, at Position.
type orderWrite struct {
	Stream   string
	Version  int
	Position int64
}

// addOrder records an acknowledged order command by the order it returned.
func (l *ledger) addOrder(o *order) {
	p, _ := strconv.ParseInt(o.Position, 10, 64)
	l.mu.Lock()
	l.orders = append(l.orders, orderWrite{Stream: "order-" + o.ID, Version: o.Version, Position: p})
	l.mu.Unlock()
}

func (l *ledger) add(o *outcome) {
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
}

func (l *ledger) all() []*outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*outcome(nil), l.outcomes...)
}

// counts returns the number of acknowledged appends and events, and failed
// appends.
func (l *ledger) counts() (ackedAppends, ackedEvents, failed int) {
	for _, o := range l.all() {
		if o.Acked {
			ackedAppends++
			ackedEvents += len(o.IDs)
		} else {
			failed++
		}
	}
	return
}

// maxPosition is the highest position acknowledged to a writer.
func (l *ledger) maxPosition() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m int64
	for _, o := range l.outcomes {
		if o.Acked {
			m = max(m, o.Last)
		}
	}
	for _, w := range l.orders {
		m = max(m, w.Position)
	}
	return m
}

// check holds the log against the ledger: every acknowledged append is there
// with its ids at the positions it was acknowledged with, and every append,
// acknowledged or not, is there wholly (all its events, consecutive in its
// stream and in order) or not at all. It returns the failed appends that are
// present.
func (l *ledger) check(t *testing.T, st *scenarioStats, log []logEvent) (presentFailed int) {
	t.Helper()
	byID := make(map[string]logEvent, len(log))
	for _, e := range log {
		byID[e.ID] = e
	}
	for _, o := range l.all() {
		if o.Acked && o.Err != "" {
			st.anomaly(t, "acknowledged append is inconsistent: %s: %s", o, o.Err)
		}
		var found []logEvent
		for _, id := range o.IDs {
			if e, ok := byID[id]; ok {
				found = append(found, e)
			}
		}
		switch {
		case len(found) == 0 && o.Acked:
			st.anomaly(t, "acknowledged write lost: %s", o)
			continue
		case len(found) == 0:
			continue
		case len(found) != len(o.IDs):
			st.anomaly(t, "partial append visible: %d of %d events of %s", len(found), len(o.IDs), o)
			continue
		}
		if !o.Acked {
			presentFailed++
		}
		for i, e := range found {
			if e.StreamID != o.StreamID || e.Version != found[0].Version+i || (i > 0 && e.pos() <= found[i-1].pos()) {
				st.anomaly(t, "append %s stored out of shape: %+v", o, found)
				break
			}
		}
		if o.Acked && (found[0].pos() != o.First || found[len(found)-1].pos() != o.Last) {
			st.anomaly(t, "append %s is at positions %s..%s", o, found[0].Position, found[len(found)-1].Position)
		}
	}
	l.mu.Lock()
	orders := append([]orderWrite(nil), l.orders...)
	l.mu.Unlock()
	for _, w := range orders {
		if w.Position < 1 || w.Position > int64(len(log)) {
			st.anomaly(t, "acknowledged order command lost: %+v is past the log's end %d", w, len(log))
			continue
		}
		if e := log[w.Position-1]; e.StreamID != w.Stream || e.Version != w.Version {
			st.anomaly(t, "acknowledged order command %+v: the log has %+v there", w, e)
		}
	}
	return presentFailed
}

// retryFailed sends every failed append again with the same ids, which must
// succeed: an append that was written is answered with its original result
// (idempotency), one that was not is written now.
func (l *ledger) retryFailed(t *testing.T, st *scenarioStats, base string) {
	t.Helper()
	for _, o := range l.all() {
		if o.Acked {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r := appendEvents(ctx, base, "retry", o.Writer, o.StreamID, o.IDs, o.Events)
		cancel()
		if !r.Acked || r.Err != "" {
			st.anomaly(t, "retrying %s with the same ids: %s", o, r)
			continue
		}
		st.written.Add(int64(len(o.IDs)))
		*o = *r
	}
}

// ---------------------------------------------------------------------------
// Subscribers.

const (
	protoTransportWS = "graphql-transport-ws"
	protoGraphQLWS   = "graphql-ws"
	protoSSE         = "sse"
)

const subscribeEvents = `subscription($a: Position) { events(afterPosition: $a) { ` + eventFields + ` } }`

// subscriber follows the global log from position 0 over one transport and
// records every event it receives. When its connection ends it resubscribes
// with the last position it saw, if it was told to; the server to
// reconnect to can be changed with setBase.
type subscriber struct {
	name      string
	proto     string
	reconnect bool
	st        *scenarioStats

	mu     sync.Mutex
	base   string
	events []logEvent
	ends   []string // why each connection ended
	cond   *sync.Cond

	cancel context.CancelFunc
	done   chan struct{}
}

func startSubscriber(t *testing.T, st *scenarioStats, name, proto, base string, reconnect bool) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{name: name, proto: proto, reconnect: reconnect, st: st, base: base, cancel: cancel, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.run(ctx)
	t.Cleanup(s.stop)
	return s
}

func (s *subscriber) stop() {
	s.cancel()
	<-s.done
}

func (s *subscriber) setBase(base string) {
	s.mu.Lock()
	s.base = base
	s.mu.Unlock()
}

func (s *subscriber) run(ctx context.Context) {
	defer func() {
		close(s.done) // before waking waiters, so that they see it
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		base, after := s.base, "0"
		if n := len(s.events); n > 0 {
			after = s.events[n-1].Position
		}
		s.mu.Unlock()
		var err error
		if s.proto == protoSSE {
			err = s.runSSE(ctx, base, after)
		} else {
			err = s.runWS(ctx, base, after)
		}
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.ends = append(s.ends, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
		s.cond.Broadcast()
		s.mu.Unlock()
		if !s.reconnect {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *subscriber) deliver(data json.RawMessage) error {
	var d struct{ Events *logEvent }
	if err := json.Unmarshal(data, &d); err != nil || d.Events == nil {
		return fmt.Errorf("unexpected payload %s", truncate(data))
	}
	s.st.delivered.Add(1)
	s.mu.Lock()
	s.events = append(s.events, *d.Events)
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// runWS speaks graphql-transport-ws or the legacy graphql-ws over one
// connection until it ends, and returns why.
func (s *subscriber) runWS(ctx context.Context, base, after string) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{s.proto}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	if c.Subprotocol() != s.proto {
		return fmt.Errorf("negotiated %q", c.Subprotocol())
	}
	send := func(m wsMessage) error {
		b, _ := json.Marshal(m)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	payload, _ := json.Marshal(map[string]any{"query": subscribeEvents, "variables": map[string]any{"a": after}})
	start := "subscribe"
	if s.proto == protoGraphQLWS {
		start = "start"
	}
	if err := send(wsMessage{Type: "connection_init", Payload: json.RawMessage(`{}`)}); err != nil {
		return err
	}
	acked := false
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("message %q: %w", truncate(b), err)
		}
		switch m.Type {
		case "connection_ack":
			if acked {
				return errors.New("second connection_ack")
			}
			acked = true
			if err := send(wsMessage{ID: "1", Type: start, Payload: payload}); err != nil {
				return err
			}
		case "ping":
			if err := send(wsMessage{Type: "pong"}); err != nil {
				return err
			}
		case "pong", "ka":
		case "next", "data":
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []gqlError      `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return fmt.Errorf("payload %q: %w", truncate(m.Payload), err)
			}
			if len(p.Errors) > 0 {
				return fmt.Errorf("error %s: %s", p.Errors[0].code(), p.Errors[0].Message)
			}
			if err := s.deliver(p.Data); err != nil {
				return err
			}
		case "error":
			return fmt.Errorf("error message: %s", truncate(m.Payload))
		case "complete":
			return errors.New("completed by the server")
		default:
			return fmt.Errorf("unexpected message %q", truncate(b))
		}
	}
}

// runSSE reads one SSE subscription (graphql-sse distinct connections mode)
// until it ends, and returns why.
func (s *subscriber) runSSE(ctx context.Context, base, after string) error {
	body, _ := json.Marshal(map[string]any{"query": subscribeEvents, "variables": map[string]any{"a": after}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := streamClient.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status %d %q: %s", resp.StatusCode, ct, truncate(b))
	}
	r := bufio.NewReader(resp.Body)
	event := ""
	var data []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case l == "":
			if event == "complete" {
				return errors.New("completed by the server")
			}
			if len(data) > 0 {
				var p struct {
					Data   json.RawMessage `json:"data"`
					Errors []gqlError      `json:"errors"`
				}
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &p); err != nil {
					return fmt.Errorf("sse data %q: %w", data, err)
				}
				if len(p.Errors) > 0 {
					return fmt.Errorf("error %s: %s", p.Errors[0].code(), p.Errors[0].Message)
				}
				if err := s.deliver(p.Data); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(l, ":"): // keep-alive
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(l, "event:"))
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimSpace(strings.TrimPrefix(l, "data:")))
		}
	}
}

// snapshot returns what the subscriber received so far and why its
// connections ended.
func (s *subscriber) snapshot() ([]logEvent, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logEvent(nil), s.events...), append([]string(nil), s.ends...)
}

// waitFor waits until the subscriber has received position n, or the
// timeout passes, or it stopped for good.
func (s *subscriber) waitFor(n int64, timeout time.Duration) bool {
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if k := len(s.events); k > 0 && s.events[k-1].pos() >= n {
			return true
		}
		select {
		case <-s.done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		s.cond.Wait()
	}
}

// checkAgainst holds what the subscriber received against the log: exactly
// positions 1..N, in order, each once, with the log's ids and streams.
func (s *subscriber) checkAgainst(t *testing.T, log []logEvent) {
	t.Helper()
	got, ends := s.snapshot()
	if len(got) != len(log) {
		s.st.anomaly(t, "subscriber %s received %d events, the log has %d (connection ends: %v)", s.name, len(got), len(log), ends)
	}
	for i := 0; i < len(got) && i < len(log); i++ {
		if got[i] != log[i] {
			s.st.anomaly(t, "subscriber %s: event %d is %+v, the log has %+v (connection ends: %v)", s.name, i, got[i], log[i], ends)
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Orders.

type orderItem struct {
	Sku            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int    `json:"unitPriceCents"`
}

type order struct {
	ID             string      `json:"id"`
	Version        int         `json:"version"`
	Position       string      `json:"position"`
	Status         string      `json:"status"`
	CustomerID     string      `json:"customerId"`
	Items          []orderItem `json:"items"`
	TotalCents     int         `json:"totalCents"`
	TrackingNumber *string     `json:"trackingNumber"`
	PlacedAt       *string     `json:"placedAt"`
	PaidAt         *string     `json:"paidAt"`
	ShippedAt      *string     `json:"shippedAt"`
}

const orderFields = `id version position status customerId items { sku quantity unitPriceCents } totalCents trackingNumber placedAt paidAt shippedAt`

// The order commands, each answering the order as r.
const (
	createOrderM = `mutation($c: String!, $id: ID) { r: createOrder(customerId: $c, orderId: $id) { ` + orderFields + ` } }`
	addItemM     = `mutation($id: ID!, $sku: String!, $q: Int!, $p: Int!) {
		r: addOrderItem(orderId: $id, item: {sku: $sku, quantity: $q, unitPriceCents: $p}) { ` + orderFields + ` } }`
	placeM = `mutation($id: ID!) { r: placeOrder(orderId: $id) { ` + orderFields + ` } }`
	payM   = `mutation($id: ID!, $a: Int!) { r: payOrder(orderId: $id, amountCents: $a) { ` + orderFields + ` } }`
	shipM  = `mutation($id: ID!, $t: String!) { r: shipOrder(orderId: $id, trackingNumber: $t) { ` + orderFields + ` } }`
)

// orderCmd runs one order command and returns the order, or the response of
// a failure, or a transport error.
func orderCmd(ctx context.Context, base, mutation string, vars map[string]any) (*order, *gqlResponse, error) {
	r, err := post(ctx, base, mutation, vars)
	if err != nil {
		return nil, nil, err
	}
	if !r.ok() {
		return nil, r, nil
	}
	var d struct{ R order }
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return nil, r, err
	}
	return &d.R, r, nil
}
