//go:build unix && !linux

package benchserver

import "syscall"

// procAttr puts a child in a process group of its own, so that Stop can
// signal everything it started. Other systems have no parent-death signal:
// a bench that dies leaves its children to be stopped by hand.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
