package tlog_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// BenchmarkAppendTree compares append throughput with and without the
// verifiable log (target: with ≥ 90% of without): two stores on fresh
// databases of the same store, one feeding a tree, take rounds of 1,000
// appends of one event from 32 concurrent appenders in turn (alternating
// which goes first), so that the
// machine's load drifts over both alike. It reports each one's docs/s and
// their ratio.
//
//	go test ./tlog -run XXX -bench AppendTree -benchtime 10x
func BenchmarkAppendTree(b *testing.B) {
	const round = 1000
	open := func(tree bool) *eventstore.Store {
		client, db := storetest.Client(b)
		if !tree {
			return storetest.Store(b, client, db)
		}
		lg := tlog.New(tlog.Config{Key: tamper.Key(b, "bench"), Logger: quiet})
		s := storetest.Store(b, client, db, eventstore.WithCommitObserver(lg.Observe), eventstore.WithAppendReceipt(lg.Receipt))
		if err := lg.Start(context.Background(), client.Database(db)); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lg.Close(context.Background()) })
		return s
	}
	stores := [2]*eventstore.Store{open(false), open(true)}
	var took [2]time.Duration
	var seq atomic.Int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range stores {
			k := (i + j) % 2 // alternate which goes first
			s := stores[k]
			start := time.Now()
			var wg sync.WaitGroup
			var left atomic.Int64
			left.Store(round)
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						n := seq.Add(1)
						if _, err := s.Append(context.Background(), fmt.Sprintf("s-%d", n%64), eventstore.Any{},
							eventstore.NewEvent{Type: "E", Data: []byte(fmt.Sprintf(`{"n":%d,"pad":"0123456789abcdef0123456789abcdef"}`, n))}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			took[k] += time.Since(start)
		}
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(b.N*round) / d.Seconds() }
	b.ReportMetric(rate(took[0]), "docs/s-plain")
	b.ReportMetric(rate(took[1]), "docs/s-tree")
	b.ReportMetric(rate(took[1])/rate(took[0]), "ratio")
}

// BenchmarkStartup measures what the verifiable log adds to start-up
// (target: ≤ 10%): building the memory image of a log of 20,000 commits
// without the tree, then with it (every leaf hashed as the image is built)
// plus the start-up check against the stored checkpoints (one every 100
// events). It reports both times, the check alone, and the overhead in
// percent of the start-up without the tree.
//
//	go test ./tlog -run XXX -bench Startup -benchtime 3x
func BenchmarkStartup(b *testing.B) {
	const commits = 20000
	client, db := storetest.Client(b)
	key := tamper.Key(b, "bench")
	lg := tlog.New(tlog.Config{Key: key, Logger: quiet, Every: 100, Interval: time.Hour})
	s := storetest.Store(b, client, db, eventstore.WithCommitObserver(lg.Observe))
	ctx := context.Background()
	if err := lg.Start(ctx, client.Database(db)); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < commits; i += 32 {
				if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%500), eventstore.Any{},
					eventstore.NewEvent{Type: "E", Data: []byte(fmt.Sprintf(`{"i":%d,"pad":"0123456789abcdef0123456789abcdef"}`, i))}); err != nil {
					b.Error(err)
					return
				}
				if i%100 == 0 {
					if _, err := lg.Checkpoint(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if _, err := lg.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	tamper.CloseStore(b, s)

	var plain, withTree, check time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		plain += timeOpen(b, client, db, nil)
		lg := tlog.New(tlog.Config{Key: key, Logger: quiet, Interval: time.Hour})
		t0 := time.Now()
		d := timeOpen(b, client, db, lg)
		c0 := time.Now()
		if err := lg.Start(ctx, client.Database(db)); err != nil {
			b.Fatal(err)
		}
		if lg.Fault() != nil {
			b.Fatal(lg.Fault())
		}
		check += time.Since(c0)
		withTree += time.Since(t0)
		_ = d
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(plain.Seconds()*1000/n, "ms-start-plain")
	b.ReportMetric(withTree.Seconds()*1000/n, "ms-start-tree+check")
	b.ReportMetric(check.Seconds()*1000/n, "ms-check")
	b.ReportMetric((withTree-plain).Seconds()*100/plain.Seconds(), "%-overhead")
}

// timeOpen opens a store (fed into lg when not nil), waits until its image
// is built, closes it, and returns how long it took to be ready.
func timeOpen(b *testing.B, client *mongo.Client, db string, lg *tlog.Log) time.Duration {
	var opts []eventstore.Option
	if lg != nil {
		opts = append(opts, eventstore.WithCommitObserver(lg.Observe))
	}
	start := time.Now()
	s := storetest.Store(b, client, db, opts...)
	d := time.Since(start)
	tamper.CloseStore(b, s)
	return d
}
