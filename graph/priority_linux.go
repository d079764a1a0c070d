package graph

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// run runs f on a new goroutine locked to its thread, whose nice value it
// raises to p.nice first, and waits for it; for nice 0 it runs f in place. A panic in f is raised again
// in the caller, where gqlgen and net/http expect it.
func (p lowPriority) run(f func()) {
	if p.nice == 0 {
		f() // the process's priority: no thread of its own
		return
	}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		// Never unlocked: the thread goes away with the goroutine.
		runtime.LockOSThread()
		// Best effort: where the kernel refuses, f runs at the priority
		// it has.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), p.nice)
		f()
	}()
	if v := <-done; v != nil {
		panic(v)
	}
}
