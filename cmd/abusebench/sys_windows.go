package main

import (
	"errors"
	"time"
)

// reniceProcess cannot lower another process's threads here: -nice-clients
// needs Linux.
func reniceProcess(int) error {
	return errors.New("-nice-clients needs Linux (per-thread nice values)")
}

// monotonic is 0: the probe's log then cannot be placed in a runtime trace
// (-trace), which is the only use of it.
func monotonic() time.Duration { return 0 }
