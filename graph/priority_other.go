//go:build !linux

package graph

// run runs f: other systems keep one priority for all the threads of a
// process, or give Go no way to set one thread's.
func (lowPriority) run(f func()) { f() }
