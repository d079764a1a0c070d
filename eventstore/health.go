package eventstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Problems the store found that an operator must hear about: positions
// missing from the log, and a memory image that fails to build again and
// again. The server shows them on /readyz and in diagnostics, and logs them
// with what to do.

// Gap is a run of positions missing from the log: From to To, inclusive.
// Positions are gap-free by construction (see the package documentation),
// so a gap means the store lost commits or was changed behind our back.
type Gap struct{ From, To int64 }

func (g Gap) String() string {
	if g.From == g.To {
		return itoa(g.From)
	}
	return itoa(g.From) + " to " + itoa(g.To)
}

// maxGaps bounds the gaps kept; more are counted.
const maxGaps = 100

type health struct {
	mu       sync.Mutex
	gaps     []Gap
	moreGaps int   // gaps beyond maxGaps
	failures int   // failed attempts to build the image in a row
	lastErr  error // the last of them
}

// noteGap records and logs positions missing from the log.
func (s *Store) noteGap(from, to int64) {
	g := Gap{From: from, To: to}
	s.log.Error("positions are missing from the log: the store lost commits or was changed behind our back; "+
		"run `hindsight verify`, and restore from a backup if it fails", "missing", g.String())
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if len(s.health.gaps) < maxGaps {
		s.health.gaps = append(s.health.gaps, g)
	} else {
		s.health.moreGaps++
	}
}

// Gaps returns the runs of positions missing from the log that the image
// found (at most 100; more is the number of further runs). A log without
// gaps returns none.
func (s *Store) Gaps() (gaps []Gap, more int) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return append([]Gap(nil), s.health.gaps...), s.health.moreGaps
}

// BuildFailure returns how many times in a row building the memory image
// has failed and the last error, while it has not succeeded; 0 and nil
// otherwise.
func (s *Store) BuildFailure() (attempts int, err error) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.failures, s.health.lastErr
}

// Problem says in one sentence what keeps the store from serving as it
// should, or returns "" when nothing does: positions missing from the log,
// or a memory image that failed to build.
func (s *Store) Problem() string {
	gaps, more := s.Gaps()
	if len(gaps) > 0 {
		parts := make([]string, 0, min(len(gaps), 5))
		for _, g := range gaps[:min(len(gaps), 5)] {
			parts = append(parts, g.String())
		}
		list := strings.Join(parts, ", ")
		if n := len(gaps) - 5 + more; n > 0 {
			list += fmt.Sprintf(" and %d more runs", n)
		}
		return "positions " + list + " are missing from the log; run `hindsight verify` and restore from a backup if it fails"
	}
	if n, err := s.BuildFailure(); n > 0 && !s.Ready() {
		return fmt.Sprintf("building the memory image failed %d times in a row: %v; %s", n, err, advice(err))
	}
	return ""
}

func (s *Store) buildFailed(err error) (attempts int) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.failures++
	s.health.lastErr = err
	return s.health.failures
}

func (s *Store) buildSucceeded() {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.failures, s.health.lastErr = 0, nil
}

// advice says what an operator can do about an error of the image build.
func advice(err error) string {
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		return "check that the store is running and reachable (HINDSIGHT_MONGODB_URI, or the embedded store's data directory)"
	case errors.Is(err, ErrDamaged):
		return "restore the log from a backup (hindsight import into an empty store), or remove the damaged document from the commits collection by hand"
	}
	return "the store answered with an error; check its log, then run `hindsight verify`"
}
