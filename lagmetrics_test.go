package main

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestLagHistogram: every lag lands in each bucket at or above it, with the
// count and sum of all.
func TestLagHistogram(t *testing.T) {
	lags := []int64{0, 0, 5, 100, 2500, 200000}
	m := lagHistogram(func(f func(int64)) {
		for _, l := range lags {
			f(l)
		}
	})
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	h := out.GetHistogram()
	if h.GetSampleCount() != 6 || h.GetSampleSum() != 202605 {
		t.Fatalf("count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	want := map[float64]uint64{0: 2, 1: 2, 10: 3, 100: 4, 1000: 4, 10000: 5, 100000: 5}
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() != want[b.GetUpperBound()] {
			t.Errorf("bucket ≤ %v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want[b.GetUpperBound()])
		}
	}
}
