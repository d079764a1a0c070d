package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-dev/hindsight/projections"
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

	// Eviction under the memory budget, and restoring from snapshots at a
	// restart: what they saved and what they cost.
	descDeclaredEvicted   = prometheus.NewDesc("hindsight_declared_projection_evicted_states_total", "States of a declarative projection version whose JSON the memory budget evicted.", declaredLabels, nil)
	descDeclaredRefolds   = prometheus.NewDesc("hindsight_declared_projection_refolds_total", "Reads that folded an evicted or restored state of a declarative projection version again.", declaredLabels, nil)
	descDeclaredSnapReads = prometheus.NewDesc("hindsight_declared_projection_snapshot_reads_total", "Folds of evicted or restored states that started from a snapshot in the store.", declaredLabels, nil)
	descDeclaredRestored  = prometheus.NewDesc("hindsight_declared_projection_restored_events_total", "Events of a declarative projection version restored from snapshots at start instead of folded.", declaredLabels, nil)
	descDeclaredRefilled  = prometheus.NewDesc("hindsight_declared_projection_refilled_states_total", "Restored states of a declarative projection version folded again in the background.", declaredLabels, nil)
	descDeclaredRestoreTo = prometheus.NewDesc("hindsight_declared_projection_restored_position", "Position up to which this instance restored a declarative projection version from snapshots (0: folded from the log).", declaredLabels, nil)
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
	for _, d := range []*prometheus.Desc{descDeclaredCkpt, descDeclaredProg, descDeclaredParts, descDeclaredFaulted, descDeclaredMemory,
		descDeclaredEvicted, descDeclaredRefolds, descDeclaredSnapReads, descDeclaredRestored, descDeclaredRefilled, descDeclaredRestoreTo} {
		ch <- d
	}
}

func (c declaredCollector) Collect(ch chan<- prometheus.Metric) {
	comp := c.a.wired.Load()
	if comp == nil {
		return
	}
	used, _ := comp.proj.Declarative().Memory()
	collectDeclared(ch, used, comp.proj.Declarative().Running())
}

// collectDeclared writes the metrics of the running versions.
func collectDeclared(ch chan<- prometheus.Metric, used int64, running []projections.DefinitionVersion) {
	ch <- prometheus.MustNewConstMetric(descDeclaredMemory, prometheus.GaugeValue, float64(used))
	for _, v := range running {
		labels := []string{v.Name, strconv.FormatInt(v.Version, 10), string(v.Status)}
		faulted := 0.0
		if v.Fault != nil {
			faulted = 1
		}
		for d, x := range map[*prometheus.Desc]float64{descDeclaredCkpt: float64(v.Checkpoint), descDeclaredProg: v.Progress,
			descDeclaredParts: float64(v.Partitions), descDeclaredFaulted: faulted, descDeclaredRestoreTo: float64(v.RestoredFrom)} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
		}
		for d, x := range map[*prometheus.Desc]float64{descDeclaredEvicted: float64(v.EvictedStates), descDeclaredRefolds: float64(v.Refolds),
			descDeclaredSnapReads: float64(v.SnapshotsRead), descDeclaredRestored: float64(v.RestoredEvents), descDeclaredRefilled: float64(v.RefilledStates)} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, x, labels...)
		}
	}
}
