//go:build unix

package benchserver

import (
	"syscall"
	"time"
)

// SelfCPU is the CPU time (user and system) the calling process has used, or
// 0 if the system will not say.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
