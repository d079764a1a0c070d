package tlog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// TestCheckpointSchedule: a checkpoint is stored once Every events arrived,
// and Close stores one of the final tree; each verifies and matches the
// tree at its size.
func TestCheckpointSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, db := storetest.Client(t)
	key := tamper.Key(t, "hindsight/schedule")
	lg := tlog.New(tlog.Config{Key: key, Every: 5, Interval: time.Hour, Logger: quiet})
	s := storetest.Store(t, client, db, eventstore.WithCommitObserver(lg.Observe))
	if err := lg.Start(ctx, client.Database(db)); err != nil {
		t.Fatal(err)
	}
	coll := client.Database(db).Collection(tlog.CheckpointsCollection)
	for i := 0; i < 7; i++ {
		if _, err := s.Append(ctx, "c", eventstore.Any{}, eventstore.NewEvent{Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	// The 5th event kicked the signer; wait for its checkpoint (no timing
	// is asserted: the test only ends once it is there, or at the deadline).
	for lg.Latest() == nil {
		if ctx.Err() != nil {
			t.Fatal("no checkpoint after 5 events")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tamper.CloseStore(t, s)
	if err := lg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cps, fault, err := tlog.LoadCheckpoints(ctx, coll, key.Verifier)
	if err != nil || fault != nil {
		t.Fatal(err, fault)
	}
	// The signer may run after a later append: the first is at 5 to 7.
	if len(cps) < 1 || len(cps) > 2 || cps[0].Size < 5 || cps[len(cps)-1].Size != 7 {
		t.Fatalf("checkpoints at sizes %v, want one of 5 to 7 and the final one of 7", sizes(cps))
	}
	if n, f := tlog.CheckAgainst(lg.Tree(), cps); n != len(cps) || f != nil {
		t.Fatalf("checked %d: %v", n, f)
	}
	// Nothing new since: another checkpoint stores nothing.
	if _, err := lg.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := tlog.LoadCheckpoints(ctx, coll, key.Verifier); len(again) != len(cps) {
		t.Fatalf("checkpoints at sizes %v after a checkpoint without new events", sizes(again))
	}
}

func sizes(cps []*tlog.Checkpoint) []uint64 {
	out := make([]uint64, len(cps))
	for i, c := range cps {
		out[i] = c.Size
	}
	return out
}
