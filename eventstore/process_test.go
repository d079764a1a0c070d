package eventstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// Child processes are this test binary run again with childEnv set.
const childEnv = "HINDSIGHT_TEST_CHILD"

// runChild is a writer process: it appends from several goroutines and prints
// "ok" when done. Mode "writer" makes small appends; mode "crasher" makes
// large ones forever, printing "acked N" after each, until it is killed.
func runChild() int {
	uri, db, mode, prefix := os.Getenv("CHILD_URI"), os.Getenv("CHILD_DB"), os.Getenv(childEnv), os.Getenv("CHILD_PREFIX")
	writers, _ := strconv.Atoi(os.Getenv("CHILD_WRITERS"))
	appends, _ := strconv.Atoi(os.Getenv("CHILD_APPENDS"))
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := eventstore.Open(ctx, client, db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := s.WaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := false
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; mode == "crasher" || i < appends; i++ {
				var events []eventstore.NewEvent
				n := 1
				if mode == "crasher" {
					n = 200
				}
				for k := 0; k < n; k++ {
					events = append(events, ev("E", map[string]any{"w": w, "i": i, "k": k, "pad": strings.Repeat("p", 500)}))
				}
				for k := range events {
					events[k].ID = uuid.NewString()
				}
				// An unavailable store leaves the outcome unknown: resend
				// with the same ids, as clients are told to.
				res, err := s.Append(ctx, fmt.Sprintf("%s-%d", prefix, w), eventstore.Any{}, events...)
				for try := 0; errors.Is(err, eventstore.ErrStoreUnavailable) && try < 5; try++ {
					res, err = s.Append(ctx, fmt.Sprintf("%s-%d", prefix, w), eventstore.Any{}, events...)
				}
				mu.Lock()
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					failed = true
				} else if mode == "crasher" {
					fmt.Printf("acked %d %d\n", res.FirstPosition, res.LastPosition)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	_ = s.Close(ctx)
	if failed {
		return 1
	}
	fmt.Println("ok")
	return 0
}

func startChild(t *testing.T, mode, uri, db, prefix string, writers, appends int) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "CHILD_URI="+uri, "CHILD_DB="+db, "CHILD_PREFIX="+prefix,
		"CHILD_WRITERS="+strconv.Itoa(writers), "CHILD_APPENDS="+strconv.Itoa(appends))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("child %s did not get ready: %q", prefix, sc.Text())
	}
	return cmd, sc
}

// collect receives n events from a subscription.
func collect(ctx context.Context, sub *eventstore.Subscription, n int) ([]eventstore.Event, error) {
	var out []eventstore.Event
	for len(out) < n {
		e, err := sub.Recv(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// TestTwoProcessesGapFree: 16 writers in 2 processes append concurrently
// while 4 subscribers in a third process (this one) receive the log. The
// test has no bound on its total time, which depends on the machine and its
// load (-race on a shared 2-core machine takes minutes); it fails when the
// subscribers stop making progress for stallTimeout.
func TestTwoProcessesGapFree(t *testing.T) {
	client, db := storetest.Client(t)
	uri := storetest.URI(t)
	s := openOn(t, client, db, eventstore.WithPollInterval(5*time.Millisecond, 50*time.Millisecond))
	writers, appends := 8, 500 // per process: 16 writers, 500 appends each
	if testing.Short() {
		writers, appends = 4, 50 // the -race run in CI: same shape, smaller
	}
	total := 2 * writers * appends
	var received atomic.Int64
	ctx, stop := watchProgress(context.Background(), stallTimeout, received.Load)
	defer stop()
	zero := int64(0)
	subs := make([]*eventstore.Subscription, 4)
	for i := range subs {
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	got := make([][]eventstore.Event, len(subs))
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Add(1)
		go func(i int, sub *eventstore.Subscription) {
			defer wg.Done()
			for len(got[i]) < total {
				e, err := sub.Recv(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], e)
				received.Add(1)
			}
		}(i, sub)
	}
	a, aout := startChild(t, "writer", uri, db, "pa", writers, appends)
	b, bout := startChild(t, "writer", uri, db, "pb", writers, appends)
	// A stall must also end the writers, which this goroutine waits for.
	go func() {
		<-ctx.Done()
		_ = a.Process.Kill()
		_ = b.Process.Kill()
	}()
	for _, c := range []struct {
		cmd *exec.Cmd
		sc  *bufio.Scanner
	}{{a, aout}, {b, bout}} {
		for c.sc.Scan() {
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("writer process failed: %v (%v)", err, context.Cause(ctx))
		}
	}
	wg.Wait()
	for i := range subs {
		if errs[i] != nil {
			t.Fatalf("subscriber %d: %v after %d events (%v)", i, errs[i], len(got[i]), context.Cause(ctx))
		}
		checkLog(t, got[i])
		if got[i][total-1].Hash != got[0][total-1].Hash {
			t.Fatalf("subscribers %d and 0 disagree", i)
		}
	}
	log := readAllEvents(t, s)
	if len(log) != total {
		t.Fatalf("log has %d events, want %d", len(log), total)
	}
}

// stallTimeout bounds how long a multi-process test may go without
// progress. It is not a speed target: on a loaded 2-core machine under
// -race, events still arrive every few hundred milliseconds.
const stallTimeout = time.Minute

// errStalled is the cause of a watchProgress context that ended because the
// progress counter stood still.
var errStalled = errors.New("no progress")

// watchProgress returns a context that is cancelled, with cause errStalled,
// once progress() has not changed for idle. stop ends the watch and the
// context.
func watchProgress(parent context.Context, idle time.Duration, progress func() int64) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		tick := time.NewTicker(idle / 20)
		defer tick.Stop()
		last, since := progress(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if p := progress(); p != last {
					last, since = p, now
				} else if now.Sub(since) >= idle {
					cancel(fmt.Errorf("%w for %v at %d events", errStalled, idle, p))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(nil) }
}

// TestCrashAtomicity kills a process in the middle of large appends: every
// append is wholly present or wholly absent, every acknowledged append is
// present, and a subscriber carries on past the crash.
func TestCrashAtomicity(t *testing.T) {
	client, db := storetest.Client(t)
	uri := storetest.URI(t)
	s := openOn(t, client, db, eventstore.WithPollInterval(5*time.Millisecond, 50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	zero := int64(0)
	sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cmd, out := startChild(t, "crasher", uri, db, "crash", 4, 0)
	var acked [][2]int64
	for out.Scan() {
		var first, last int64
		if _, err := fmt.Sscanf(out.Text(), "acked %d %d", &first, &last); err == nil {
			acked = append(acked, [2]int64{first, last})
		}
		if len(acked) >= 6 {
			break
		}
	}
	// Let it get into the middle of the next appends, then kill it hard.
	time.Sleep(30 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// A writer in this process continues the log; the subscriber sees
	// everything, with no hole where the crash was.
	if _, err := s.Append(ctx, "after-crash", eventstore.Any{}, ev("After", 1)); err != nil {
		t.Fatal(err)
	}
	// Every stored commit is whole: its events are contiguous and complete.
	cur, err := client.Database(db).Collection(eventstore.CommitsCollection).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range docs {
		first, last := d["_id"].(int64), d["lastPosition"].(int64)
		n := len(d["events"].(bson.A))
		if d["stream"] == "after-crash" {
			n = 200 // the probe's single event
		}
		if int64(len(d["events"].(bson.A))) != last-first+1 || n != 200 {
			t.Fatalf("commit at %d holds %d events, want 200", first, n)
		}
		want += len(d["events"].(bson.A))
	}
	evs, err := collect(ctx, sub, want)
	if err != nil {
		t.Fatalf("subscriber: %v after %d of %d", err, len(evs), want)
	}
	checkLog(t, evs)
	for _, a := range acked {
		if a[1] > int64(want) || evs[a[0]-1].Position != a[0] {
			t.Fatalf("acknowledged append %v is missing", a)
		}
	}
	if evs[want-1].StreamID != "after-crash" {
		t.Fatalf("last event is %s", evs[want-1].StreamID)
	}
}

// TestWatchProgress: the deadline of the multi-process tests ends a watch
// whose counter stands still, and only that one.
func TestWatchProgress(t *testing.T) {
	const idle = time.Second
	var n atomic.Int64
	moving, stopMoving := watchProgress(context.Background(), idle, n.Load)
	defer stopMoving()
	still, stopStill := watchProgress(context.Background(), idle, func() int64 { return 7 })
	defer stopStill()
	for i := 0; i < 40; i++ { // 2 × idle of steady progress
		n.Add(1)
		time.Sleep(idle / 20)
	}
	if err := context.Cause(moving); err != nil {
		t.Fatalf("a watch with progress ended: %v", err)
	}
	<-still.Done()
	if !errors.Is(context.Cause(still), errStalled) {
		t.Fatalf("a watch without progress ended with %v, want errStalled", context.Cause(still))
	}
}
