package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// declaredCollector exports, at scrape time, where each running version of a
// declarative projection stands (issue 19): its checkpoint, build progress,
// partitions, and whether it faulted.
type declaredCollector struct{ a *app }

var (
	declaredLabels      = []string{"projection", "version", "status"}
	descDeclaredCkpt    = prometheus.NewDesc("hindsight_declared_projection_checkpoint", "Position a declarative projection version has folded.", declaredLabels, nil)
	descDeclaredProg    = prometheus.NewDesc("hindsight_declared_projection_progress", "Build progress of a declarative projection version, 0 to 1.", declaredLabels, nil)
	descDeclaredParts   = prometheus.NewDesc("hindsight_declared_projection_partitions", "Partitions of a declarative projection version.", declaredLabels, nil)
	descDeclaredFaulted = prometheus.NewDesc("hindsight_declared_projection_faulted", "1 when a declarative projection version stopped on a reducer fault.", declaredLabels, nil)
	descDeclaredMemory  = prometheus.NewDesc("hindsight_declared_projection_memory_bytes", "Estimated memory of all declarative projections' states.", nil, nil)
)

// projectionBudget maps the setting (0 = unlimited) to projections.Options
// (0 = the default, negative = unlimited).
func projectionBudget(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func (declaredCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeclaredCkpt, descDeclaredProg, descDeclaredParts, descDeclaredFaulted, descDeclaredMemory} {
		ch <- d
	}
}

func (c declaredCollector) Collect(ch chan<- prometheus.Metric) {
	comp := c.a.wired.Load()
	if comp == nil {
		return
	}
	used, _ := comp.proj.Declarative().Memory()
	ch <- prometheus.MustNewConstMetric(descDeclaredMemory, prometheus.GaugeValue, float64(used))
	for _, v := range comp.proj.Declarative().Running() {
		labels := []string{v.Name, strconv.FormatInt(v.Version, 10), string(v.Status)}
		faulted := 0.0
		if v.Fault != nil {
			faulted = 1
		}
		for d, x := range map[*prometheus.Desc]float64{descDeclaredCkpt: float64(v.Checkpoint), descDeclaredProg: v.Progress,
			descDeclaredParts: float64(v.Partitions), descDeclaredFaulted: faulted} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
		}
	}
}
