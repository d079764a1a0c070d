package benchserver

import (
	"os"
	"syscall"
)

// procAttr starts the child in a process group of its own. Windows has no
// parent-death signal: a bench that dies leaves its children to be stopped by
// hand.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminateGroup stops the child. Windows has no SIGTERM to send a console
// process group from here, so the child is killed; the benches only use the
// graceful stop to leave a tidy log, not for any figure.
func terminateGroup(p *os.Process) { _ = p.Kill() }

// killGroup kills the child. Its own children (a devdb started by a server)
// are separate processes that Stop's callers stop themselves.
func killGroup(p *os.Process) { _ = p.Kill() }
