package benchserver

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP hindsight_image_hits_total Reads served from memory.
# TYPE hindsight_image_hits_total counter
hindsight_image_hits_total 1234
hindsight_image_resident_bytes 5.5e+06
hindsight_image_reads_total{source="memory"} 10
hindsight_image_reads_total{source="store"} 3 1700000000000
go_info{version="go1.26 {x}"} 1
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"hindsight_image_hits_total":                   1234,
		"hindsight_image_resident_bytes":               5.5e6,
		"hindsight_image_reads_total":                  13,
		`hindsight_image_reads_total{source="store"}`:  3,
		`hindsight_image_reads_total{source="memory"}`: 10,
		"go_info": 1,
	} {
		if got, ok := m.Get(name); !ok || got != want {
			t.Errorf("Get(%s) = %v, %v; want %v", name, got, ok, want)
		}
	}
	if _, ok := m.Get("hindsight_image_hits"); ok {
		t.Error("a prefix of a name matched")
	}
	if _, ok := m.Get("hindsight_image_misses_total"); ok {
		t.Error("a missing metric was found")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := Percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
}
