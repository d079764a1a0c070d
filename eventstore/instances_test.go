package eventstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// Two stores on one database behave as two instances.
func TestTwoInstancesInOneProcess(t *testing.T) {
	a, client, db := openStore(t, eventstore.WithPollInterval(5*time.Millisecond, 20*time.Millisecond))
	b := openOn(t, client, db, eventstore.WithPollInterval(5*time.Millisecond, 20*time.Millisecond))
	ctx := ctxT(t)
	res, err := a.Append(ctx, "shared", eventstore.NoStream{}, ev("A", 1))
	if err != nil {
		t.Fatal(err)
	}
	// Read your writes on the other instance.
	if err := b.WaitForPosition(ctx, res.LastPosition); err != nil {
		t.Fatal(err)
	}
	if h, err := b.Head(ctx, "shared"); err != nil || h.Version != 1 {
		t.Fatalf("b sees %+v, %v", h, err)
	}
	// b has seen version 1 now; a writes version 2, and b, told version 2
	// by a client, re-reads instead of rejecting with a stale version.
	if _, err := a.Append(ctx, "shared", eventstore.Exact(1), ev("A", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "shared", eventstore.Exact(2), ev("B", 3)); err != nil {
		t.Fatalf("append on b with a version written on a: %v", err)
	}
	// A stale instance's conflicting append fails with the true version.
	_, err = a.Append(ctx, "shared", eventstore.Exact(2), ev("A", 4))
	var wev *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wev) || wev.Actual != 3 {
		t.Fatalf("err = %v, want wrong expected version with actual 3", err)
	}
	// Both hold the same log.
	if err := a.WaitForPosition(ctx, 3); err != nil {
		t.Fatal(err)
	}
	la, lb := readAllEvents(t, a), readAllEvents(t, b)
	if len(la) != 3 || len(lb) != 3 || la[2].Hash != lb[2].Hash {
		t.Fatalf("logs differ: %d and %d events", len(la), len(lb))
	}
	checkLog(t, la)
}

func TestSnapshots(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	var results []eventstore.AppendResult
	for i := 0; i < 6; i++ {
		r, err := s.Append(ctx, "snap", eventstore.Any{}, ev("E", i))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	save := func(proj string, schema int, v int64) {
		e := results[v-1].Events[0]
		st, _ := json.Marshal(map[string]any{"v": v, "schema": schema})
		if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "snap", Projection: proj, SchemaVersion: schema,
			Version: v, Position: e.Position, RecordedAt: e.RecordedAt, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	save("p", 1, 2)
	save("p", 1, 4)
	save("p", 1, 4) // idempotent
	save("p", 2, 3)
	s2 := openOn(t, client, db) // snapshots survive a restart
	cases := []struct {
		name   string
		schema int
		at     eventstore.At
		want   int64 // 0 = not found
	}{
		{"latest", 1, eventstore.Now(), 4},
		{"at version 3", 1, eventstore.AtVersion(3), 2},
		{"at version 1", 1, eventstore.AtVersion(1), 0},
		{"at position of v5", 1, eventstore.AtPosition(results[4].LastPosition), 4},
		{"at time of v2", 1, eventstore.AtTime(results[1].Events[0].RecordedAt), 2},
		{"other schema", 2, eventstore.Now(), 3},
		{"unknown schema", 3, eventstore.Now(), 0},
	}
	for _, st := range []*eventstore.Store{s, s2} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				sn, err := st.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: "snap", Projection: "p", SchemaVersion: c.schema, At: c.at})
				if c.want == 0 {
					if !errors.Is(err, eventstore.ErrSnapshotNotFound) {
						t.Fatalf("err = %v, want not found", err)
					}
					return
				}
				if err != nil || sn.Version != c.want || sn.SchemaVersion != c.schema {
					t.Fatalf("snapshot %+v (%v), want version %d", sn, err, c.want)
				}
			})
		}
	}
}

// waitPeers waits until each store sees the others alive.
func waitPeers(t *testing.T, n int, stores ...*eventstore.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range stores {
		for s.Stats().Peers != n {
			if time.Now().After(deadline) {
				t.Fatalf("instance %s sees %d peers, want %d", s.Instance(), s.Stats().Peers, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A peer's commits reach an instance through the peer's beacon: neither
// read-your-writes (WaitForPosition), nor Sync, nor the tailer reads the log.
func TestPeerCommitsArriveWithoutReadingTheLog(t *testing.T) {
	poll := eventstore.WithPollInterval(5*time.Millisecond, 20*time.Millisecond)
	a, client, db := openStore(t, poll)
	b := openOn(t, client, db, poll)
	waitPeers(t, 1, a, b)
	ctx := ctxT(t)
	reads := b.Stats().LogReads
	var last eventstore.AppendResult
	for i := range 20 {
		r, err := a.Append(ctx, streamName("beacon", i%3), eventstore.Any{}, ev("A", i))
		if err != nil {
			t.Fatal(err)
		}
		last = r
		if i%5 == 0 {
			// Read your writes on b, at once.
			if err := b.WaitForPosition(ctx, r.LastPosition); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.HeadPosition(); got != last.LastPosition {
		t.Fatalf("after Sync b's head is %d, want %d", got, last.LastPosition)
	}
	if got := b.Stats().LogReads - reads; got != 0 {
		t.Fatalf("b read the log %d times to follow a live, announcing peer; want 0", got)
	}
	la, lb := readAllEvents(t, a), readAllEvents(t, b)
	if len(lb) != 20 || len(la) != 20 {
		t.Fatalf("a holds %d events, b %d; want 20", len(la), len(lb))
	}
	for i := range la {
		if la[i].Hash != lb[i].Hash || la[i].Position != lb[i].Position || string(la[i].Data) != string(lb[i].Data) {
			t.Fatalf("event %d differs: %+v vs %+v", i, la[i], lb[i])
		}
	}
}

// Two instances appending at full speed at the same time, to shared and own
// streams: every append lands (none fails with too much contention), both
// hold the same gap-free log, and lost races are resolved mostly from the
// winner's beacon rather than by reading the log.
func TestTwoInstancesContendWithoutStarving(t *testing.T) {
	poll := eventstore.WithPollInterval(5*time.Millisecond, 20*time.Millisecond)
	a, client, db := openStore(t, poll)
	b := openOn(t, client, db, poll)
	waitPeers(t, 1, a, b)
	ctx := ctxT(t)
	writers, appends := 8, 60
	if testing.Short() {
		writers, appends = 4, 30
	}
	errs := make(chan error, 2*writers)
	var wg sync.WaitGroup
	for _, s := range []*eventstore.Store{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					stream := streamName("own-"+s.Instance(), w)
					if i%2 == 0 {
						stream = streamName("shared", w%2)
					}
					if _, err := s.Append(ctx, stream, eventstore.Any{}, ev("E", i)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append failed: %v", err)
	}
	want := int64(2 * writers * appends)
	for _, s := range []*eventstore.Store{a, b} {
		if err := s.WaitForPosition(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	la, lb := readAllEvents(t, a), readAllEvents(t, b)
	if int64(len(la)) != want || int64(len(lb)) != want {
		t.Fatalf("a holds %d events, b %d; want %d", len(la), len(lb), want)
	}
	checkLog(t, la)
	for i := range la {
		if la[i].Hash != lb[i].Hash || la[i].Position != lb[i].Position {
			t.Fatalf("position %d differs between the instances", la[i].Position)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("batches a=%d b=%d, log reads a=%d b=%d", sa.Batches, sb.Batches, sa.LogReads, sb.LogReads)
}

// TestSnapshotIDsDoNotCollide: snapshots whose stream and projection,
// joined with "|", read the same are two snapshots, after a restart too.
// With that joined _id the second one's save was taken for a duplicate and
// it was gone once the store was opened again.
func TestSnapshotIDsDoNotCollide(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	crafted := []eventstore.Snapshot{
		{StreamID: "a|b", Projection: "c", SchemaVersion: 1, Version: 1},
		{StreamID: "a", Projection: "b|c", SchemaVersion: 1, Version: 1},
		{StreamID: "k|declared:p:h@100|1", Projection: "declared:p:h@100", SchemaVersion: 1, Version: 100},
		{StreamID: "k", Projection: "declared:p:h@100|1|declared:p:h@100", SchemaVersion: 1, Version: 100},
	}
	for i := range crafted {
		crafted[i].State = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
		crafted[i].RecordedAt = time.Unix(1700000000, 0).UTC()
		if err := s.SaveSnapshot(ctx, crafted[i]); err != nil {
			t.Fatal(err)
		}
	}
	s2 := openOn(t, client, db)
	for i, sn := range crafted {
		got, err := s2.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: sn.StreamID, Projection: sn.Projection,
			SchemaVersion: sn.SchemaVersion, At: eventstore.Now()})
		if err != nil || string(got.State) != string(sn.State) || got.Version != sn.Version {
			t.Fatalf("snapshot %d (%q, %q) after a restart: %+v, %v", i, sn.StreamID, sn.Projection, got, err)
		}
	}
}

// TestDeleteSnapshots: deleting by a projection prefix and schema version
// removes exactly those snapshots, from memory and from the store (a new
// instance does not load them), and leaves the others.
func TestDeleteSnapshots(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	all := []eventstore.Snapshot{
		{StreamID: "k1", Projection: "declared:p:h@100", SchemaVersion: 1, Version: 100}, // deleted
		{StreamID: "k2", Projection: "declared:p:h@200", SchemaVersion: 1, Version: 200}, // deleted
		{StreamID: "def", Projection: "declared:p:h", SchemaVersion: 1, Version: 7},      // deleted
		{StreamID: "k1", Projection: "declared:p:h@100", SchemaVersion: 2, Version: 100}, // another version
		{StreamID: "k1", Projection: "declared:q:h@100", SchemaVersion: 1, Version: 100}, // another projection
		{StreamID: "k1", Projection: "declared:p", SchemaVersion: 1, Version: 1},         // shorter than the prefix
	}
	for i := range all {
		all[i].State = json.RawMessage(`{}`)
		if err := s.SaveSnapshot(ctx, all[i]); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteSnapshots(ctx, eventstore.SnapshotDelete{Projection: "declared:p:h", Prefix: true, SchemaVersion: 1})
	if err != nil || n != 3 {
		t.Fatalf("deleted %d, %v; want 3", n, err)
	}
	if _, err := s.DeleteSnapshots(ctx, eventstore.SnapshotDelete{}); !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Fatalf("no projection: %v", err)
	}
	for _, st := range []*eventstore.Store{s, openOn(t, client, db)} {
		for i, sn := range all {
			_, err := st.LoadSnapshot(ctx, eventstore.SnapshotQuery{StreamID: sn.StreamID, Projection: sn.Projection,
				SchemaVersion: sn.SchemaVersion, At: eventstore.Now()})
			if gone := errors.Is(err, eventstore.ErrSnapshotNotFound); gone != (i < 3) || (!gone && err != nil) {
				t.Fatalf("snapshot %d (%s, schema %d): %v", i, sn.Projection, sn.SchemaVersion, err)
			}
		}
	}
}
