package benchserver

import "syscall"

// procAttr puts a child in a process group of its own, so that Stop can
// signal everything it started, and has the kernel stop it with SIGTERM if
// the bench dies first (Linux only).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
