package graph

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"golang.org/x/sys/unix"
)

// threadNice reads the nice value of this process's thread tid; ok is
// false once the thread is gone.
func threadNice(tid int) (nice int, ok bool, err error) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) { // gone, or going
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	// Fields after "(comm)", which may hold spaces: state is field 3,
	// nice field 19 (proc(5)).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	nice, err = strconv.Atoi(f[19-3])
	return nice, true, err
}

// callerNice is the nice value of the calling goroutine's thread, which
// tests start from: lowPriority can only raise it.
func callerNice(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, _, err := threadNice(unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lowered runs in f's place and records its thread and that thread's nice.
type lowered struct {
	tid, nice int
	err       error
}

func (l *lowered) record() {
	l.tid = unix.Gettid()
	l.nice, _, l.err = threadNice(l.tid)
}

// awaitGone waits until thread tid has ended: the runtime ends a thread
// whose goroutine exits locked to it, so a lowered thread never runs
// other goroutines. The process's main thread is the exception: the
// runtime parks it for good instead (mexit), which serves as well.
func awaitGone(t *testing.T, tid int) {
	t.Helper()
	if tid == os.Getpid() {
		return
	}
	for {
		_, ok, err := threadNice(tid)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
		runtime.Gosched()
	}
}

func TestLowPriorityThread(t *testing.T) {
	base := callerNice(t)
	want := max(base, 10)
	for range 3 {
		var got lowered
		lowPriority{nice: 10}.run(got.record)
		if got.err != nil {
			t.Fatal(got.err)
		}
		if got.nice != want {
			t.Errorf("work ran at nice %d, want %d", got.nice, want)
		}
		awaitGone(t, got.tid)
	}
	if n := callerNice(t); n != base {
		t.Errorf("the caller's thread is at nice %d after, want %d", n, base)
	}
}

func TestLowPriorityPanic(t *testing.T) {
	defer func() {
		if r := recover(); r != "resolver bug" {
			t.Errorf("recovered %v, want the work's panic", r)
		}
	}()
	lowPriority{nice: 10}.run(func() { panic("resolver bug") })
	t.Error("no panic")
}

// A query or mutation the lane marked heavy executes on a lowered thread,
// unless the endpoint runs heavy work at normal priority; any other runs
// where it is asked for. All leave the lane.
func TestLaneExecutesHeavyLowered(t *testing.T) {
	base := callerNice(t)
	for _, tc := range []struct {
		name    string
		heavy   bool
		company bool // another operation runs meanwhile
		prio    lowPriority
		want    int
	}{
		{"heavy with company", true, true, heavyPriority, max(base, heavyPriority.nice)},
		{"heavy alone", true, false, heavyPriority, base},
		{"cheap with company", false, true, heavyPriority, base},
		{"heavy at normal priority", true, true, lowPriority{}, base}, // HeavyAtNormalPriority
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l := newHeavyLane(1)
			l.prio = tc.prio
			ctx = graphql.WithOperationContext(ctx, &graphql.OperationContext{})
			if tc.heavy {
				l.opTicket(ctx, true).execute = true
			}
			if tc.company {
				l.running.Add(1)
				defer l.running.Add(-1)
			}
			runtime.LockOSThread() // the cheap one runs on this goroutine's thread
			defer runtime.UnlockOSThread()
			var got lowered
			l.InterceptResponse(ctx, func(context.Context) *graphql.Response {
				got.record()
				return &graphql.Response{}
			})
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.nice != tc.want {
				t.Errorf("executed at nice %d, want %d", got.nice, tc.want)
			}
			if lowered := tc.heavy && tc.company && tc.prio.nice != 0; lowered == (got.tid == unix.Gettid()) {
				t.Errorf("executed on the caller's thread: %v, want %v", got.tid == unix.Gettid(), !lowered)
			}
			if !l.sem.TryAcquire(l.size) {
				t.Error("the lane is still held")
			}
		})
	}
}
