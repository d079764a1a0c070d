package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hindsight-dev/hindsight/projections"
)

// fixedDeclared collects the metrics of a fixed list of versions.
type fixedDeclared []projections.DefinitionVersion

func (fixedDeclared) Describe(ch chan<- *prometheus.Desc) { declaredCollector{}.Describe(ch) }
func (f fixedDeclared) Collect(ch chan<- prometheus.Metric) {
	collectDeclared(ch, 4096, f)
}

// TestDeclaredEvictionAndRestoreMetrics: each version's evictions, refolds,
// snapshot reads and restore are exported with its labels, and the names
// pass Prometheus' lint.
func TestDeclaredEvictionAndRestoreMetrics(t *testing.T) {
	c := fixedDeclared{
		{Definition: projections.Definition{Name: "carts"}, Version: 2, Status: projections.StatusActive,
			EvictedStates: 17, Refolds: 5, SnapshotsRead: 3, RestoredEvents: 900, RefilledStates: 40, RestoredFrom: 1200},
		{Definition: projections.Definition{Name: "ltv"}, Version: 1, Status: projections.StatusBuilding},
	}
	want := `
# HELP hindsight_declared_projection_evicted_states_total States of a declarative projection version whose JSON the memory budget evicted.
# TYPE hindsight_declared_projection_evicted_states_total counter
hindsight_declared_projection_evicted_states_total{projection="carts",status="ACTIVE",version="2"} 17
hindsight_declared_projection_evicted_states_total{projection="ltv",status="BUILDING",version="1"} 0
# HELP hindsight_declared_projection_refolds_total Reads that folded an evicted or restored state of a declarative projection version again.
# TYPE hindsight_declared_projection_refolds_total counter
hindsight_declared_projection_refolds_total{projection="carts",status="ACTIVE",version="2"} 5
hindsight_declared_projection_refolds_total{projection="ltv",status="BUILDING",version="1"} 0
# HELP hindsight_declared_projection_snapshot_reads_total Folds of evicted or restored states that started from a snapshot in the store.
# TYPE hindsight_declared_projection_snapshot_reads_total counter
hindsight_declared_projection_snapshot_reads_total{projection="carts",status="ACTIVE",version="2"} 3
hindsight_declared_projection_snapshot_reads_total{projection="ltv",status="BUILDING",version="1"} 0
# HELP hindsight_declared_projection_restored_events_total Events of a declarative projection version restored from snapshots at start instead of folded.
# TYPE hindsight_declared_projection_restored_events_total counter
hindsight_declared_projection_restored_events_total{projection="carts",status="ACTIVE",version="2"} 900
hindsight_declared_projection_restored_events_total{projection="ltv",status="BUILDING",version="1"} 0
# HELP hindsight_declared_projection_refilled_states_total Restored states of a declarative projection version folded again in the background.
# TYPE hindsight_declared_projection_refilled_states_total counter
hindsight_declared_projection_refilled_states_total{projection="carts",status="ACTIVE",version="2"} 40
hindsight_declared_projection_refilled_states_total{projection="ltv",status="BUILDING",version="1"} 0
# HELP hindsight_declared_projection_restored_position Position up to which this instance restored a declarative projection version from snapshots (0: folded from the log).
# TYPE hindsight_declared_projection_restored_position gauge
hindsight_declared_projection_restored_position{projection="carts",status="ACTIVE",version="2"} 1200
hindsight_declared_projection_restored_position{projection="ltv",status="BUILDING",version="1"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"hindsight_declared_projection_evicted_states_total", "hindsight_declared_projection_refolds_total",
		"hindsight_declared_projection_snapshot_reads_total", "hindsight_declared_projection_restored_events_total",
		"hindsight_declared_projection_refilled_states_total", "hindsight_declared_projection_restored_position"); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// fixedSnapshotWrites collects the snapshot writer's outcomes of fixed
// stats.
type fixedSnapshotWrites projections.Stats

func (fixedSnapshotWrites) Describe(ch chan<- *prometheus.Desc) { ch <- descSnapWrites }
func (f fixedSnapshotWrites) Collect(ch chan<- prometheus.Metric) {
	collectSnapshotWrites(ch, projections.Stats(f))
}

// TestSnapshotWriteMetrics: snapshots saved, dropped on a full queue and
// failed are one counter with an outcome label, and pass Prometheus' lint.
func TestSnapshotWriteMetrics(t *testing.T) {
	c := fixedSnapshotWrites{SnapshotsSaved: 1048, SnapshotsDropped: 1052, SnapshotsFailed: 2}
	want := `
# HELP hindsight_snapshot_writes_total Projection snapshots (orders, stream states, declarative projections' kept states) offered for writing, by outcome: saved, dropped (the write queue was full) or failed.
# TYPE hindsight_snapshot_writes_total counter
hindsight_snapshot_writes_total{outcome="dropped"} 1052
hindsight_snapshot_writes_total{outcome="failed"} 2
hindsight_snapshot_writes_total{outcome="saved"} 1048
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "hindsight_snapshot_writes_total"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
