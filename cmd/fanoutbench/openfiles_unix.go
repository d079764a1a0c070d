//go:build unix

package main

import (
	"fmt"
	"io"
	"syscall"
)

// raiseOpenFiles raises this process's open-file limit towards need (a child
// server inherits it), and warns if the hard limit is lower.
func raiseOpenFiles(need uint64, stderr io.Writer) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raising the open file limit to %d: %w", lim.Cur, err)
		}
	}
	if lim.Cur < need {
		fmt.Fprintf(stderr, "warning: the open file limit is %d (hard limit); about %d are needed\n", lim.Cur, need)
	}
	return nil
}
