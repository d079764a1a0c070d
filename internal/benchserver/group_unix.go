//go:build unix

package benchserver

import (
	"os"
	"syscall"
)

// terminateGroup asks the child's process group (the child and whatever it
// started) to stop.
func terminateGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// killGroup kills the child's process group.
func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
