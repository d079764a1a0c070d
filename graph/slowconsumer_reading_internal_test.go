package graph

import (
	"testing"
	"time"
)

// TestSlowWatchSparesStoreReads: a check that finds the subscription in the
// store's Recv (a catch-up reading evicted events) gives no verdict and
// only notes the lag; checks that find it waiting for its client apply the
// rule of TestSlowWatchRule.
func TestSlowWatchSparesStoreReads(t *testing.T) {
	cases := []struct {
		name    string
		lags    []int64 // at each check
		reading []bool  // in Recv at each check
		ended   int     // the check that ends it (1-based); 0 = never
	}{
		{"a store read over several checks", []int64{16384, 16384, 16384, 16000, 15000}, []bool{true, true, true, false, false}, 0},
		{"the same, not reading: ended", []int64{16384, 16384}, []bool{false, false}, 2},
		{"read, then stalled on its client", []int64{500, 500, 500}, []bool{true, false, false}, 2},
		{"stalled on its client around a read", []int64{500, 500, 500}, []bool{false, true, false}, 3},
		{"reading while falling behind, then stalled", []int64{200, 300, 300}, []bool{true, true, false}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &slowWatch{maxLag: 100, every: time.Hour, subs: map[*watched]struct{}{}, running: true} // checks by hand
			var i int
			ended := 0
			unwatch := s.watchReading(func() int64 { return c.lags[i] }, func() bool { return c.reading[i] }, func() { ended = i + 1 })
			defer unwatch()
			for i = range c.lags {
				s.check()
				if ended != 0 {
					break
				}
			}
			if ended != c.ended {
				t.Fatalf("ended at check %d, want %d", ended, c.ended)
			}
		})
	}
}
