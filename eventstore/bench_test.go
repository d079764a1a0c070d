package eventstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// BenchmarkAppend compares appends through the store (group commit) with a
// raw-driver InsertOne of a document of the same shape, at 1 and 32
// concurrent appenders. Compare docs/s across sub-benchmarks of one run.
func BenchmarkAppend(b *testing.B) {
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("raw-insertone/c=%d", conc), func(b *testing.B) {
			client, db := benchClient(b)
			coll := client.Database(db).Collection("raw")
			var seq atomic.Int64
			runConcurrent(b, conc, func() error {
				n := seq.Add(1)
				_, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: n}, {Key: "stream", Value: "s"},
					{Key: "events", Value: bson.A{bson.D{{Key: "type", Value: "E"}, {Key: "data", Value: `{"n":1}`}}}}})
				return err
			})
		})
		b.Run(fmt.Sprintf("store/c=%d", conc), func(b *testing.B) {
			s, _, _ := openStore(b)
			var seq atomic.Int64
			runConcurrent(b, conc, func() error {
				n := seq.Add(1)
				_, err := s.Append(context.Background(), streamName("s", int(n%64)), eventstore.Any{}, ev("E", map[string]int64{"n": n}))
				return err
			})
		})
	}
}

func runConcurrent(b *testing.B, conc int, op func() error) {
	b.ResetTimer()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkReadAll compares paging the global log from the store (memory
// image) with a raw Find over the same documents.
func BenchmarkReadAll(b *testing.B) {
	s, client, db := openStore(b)
	ctx := context.Background()
	const total = 10000
	for i := 0; i < total/100; i++ {
		batch := make([]eventstore.NewEvent, 100)
		for k := range batch {
			batch[k] = ev("E", map[string]int{"i": i, "k": k})
		}
		if _, err := s.Append(ctx, streamName("r", i%10), eventstore.Any{}, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("raw-find", func(b *testing.B) {
		coll := client.Database(db).Collection(eventstore.CommitsCollection)
		for i := 0; i < b.N; i++ {
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for cur.Next(ctx) {
				vals, err := cur.Current.Lookup("events").Array().Values()
				if err != nil {
					b.Fatal(err)
				}
				n += len(vals)
			}
			cur.Close(ctx)
			if n != total {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("store", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var after int64
			n := 0
			for {
				page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 1000})
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				n += len(page)
				after = page[len(page)-1].Position
			}
			if n != total {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkFanOut delivers each appended event to 1,000 subscribers.
func BenchmarkFanOut(b *testing.B) {
	s, _, _ := openStore(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const subs = 1000
	var delivered atomic.Int64
	var wg sync.WaitGroup
	start := s.HeadPosition()
	for i := 0; i < subs; i++ {
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &start})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for {
				if _, err := sub.Recv(ctx); err != nil {
					return
				}
				delivered.Add(1)
			}
		}()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, "fan", eventstore.Any{}, ev("E", i)); err != nil {
			b.Fatal(err)
		}
	}
	for delivered.Load() < int64(b.N*subs) {
		if err := s.WaitForPosition(ctx, int64(b.N)); err != nil {
			b.Fatal(err)
		}
		runtimeGosched()
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkAppendAtLimit measures an append at the documented limit
// (MaxAppendBytes of data, as one event and as 1,000) through the store,
// against the raw driver writing the same documents: one id reservation per
// event and one commit document (InsertMany). B/op is the figure. "driver"
// reserves the ids with InsertMany, unordered, as the store did before;
// "driver-command" with one insert command encoded beforehand
// (Database.RunCommand), as the store does now (insertcmd.go): it is the
// floor of what an append through the driver's public API allocates besides
// the store's own copy of the data. Run it with HINDSIGHT_MONGODB_URI naming
// a store in another process (`hindsight devdb`), or B/op also counts the
// embedded store's own allocations:
//
//	go test ./eventstore -run '^$' -bench AppendAtLimit -benchtime 20x
func BenchmarkAppendAtLimit(b *testing.B) {
	for _, n := range []int{1, 1000} {
		data := `"` + strings.Repeat("x", eventstore.MaxAppendBytes/n-2) + `"`
		b.Run(fmt.Sprintf("driver/events=%d", n), func(b *testing.B) {
			client, db := benchClient(b)
			ids, commits := client.Database(db).Collection("ids"), client.Database(db).Collection("commits")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// The documents are encoded with the timer stopped: what is
				// measured is the driver's insert API alone, the floor.
				b.StopTimer()
				reservations := make([]any, n)
				events := make(bson.A, n)
				for j := range events {
					id := fmt.Sprintf("%d-%d", i, j)
					reservations[j] = mustRaw(b, bson.D{{Key: "_id", Value: id}, {Key: "stream", Value: "s"}, {Key: "version", Value: int64(j + 1)},
						{Key: "sum", Value: "0123456789abcdef0123456789abcdef"}, {Key: "at", Value: time.Now()}})
					events[j] = bson.D{{Key: "id", Value: id}, {Key: "type", Value: "Big"}, {Key: "data", Value: data},
						{Key: "hash", Value: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
				}
				commit := mustRaw(b, bson.D{{Key: "_id", Value: int64(i)}, {Key: "stream", Value: fmt.Sprintf("s%d", i)}, {Key: "events", Value: events}})
				b.StartTimer()
				if _, err := ids.InsertMany(context.Background(), reservations, options.InsertMany().SetOrdered(false)); err != nil {
					b.Fatal(err)
				}
				if _, err := commits.InsertMany(context.Background(), []any{commit}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("driver-command/events=%d", n), func(b *testing.B) {
			client, db := benchClient(b)
			commits := client.Database(db).Collection("commits")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer() // the documents are encoded beforehand, as above
				reservations := make(bson.A, n)
				events := make(bson.A, n)
				for j := range events {
					id := fmt.Sprintf("%d-%d", i, j)
					reservations[j] = bson.D{{Key: "_id", Value: id}, {Key: "stream", Value: "s"}, {Key: "version", Value: int64(j + 1)},
						{Key: "sum", Value: "0123456789abcdef0123456789abcdef"}, {Key: "at", Value: time.Now()}}
					events[j] = bson.D{{Key: "id", Value: id}, {Key: "type", Value: "Big"}, {Key: "data", Value: data},
						{Key: "hash", Value: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
				}
				insert := mustRaw(b, bson.D{{Key: "insert", Value: "ids"}, {Key: "documents", Value: reservations}, {Key: "ordered", Value: false}})
				commit := mustRaw(b, bson.D{{Key: "_id", Value: int64(i)}, {Key: "stream", Value: fmt.Sprintf("s%d", i)}, {Key: "events", Value: events}})
				b.StartTimer()
				if err := client.Database(db).RunCommand(context.Background(), insert).Err(); err != nil {
					b.Fatal(err)
				}
				if _, err := commits.InsertMany(context.Background(), []any{commit}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("store/events=%d", n), func(b *testing.B) {
			s, _, _ := openStore(b)
			evs := make([]eventstore.NewEvent, n)
			for j := range evs {
				evs[j] = eventstore.NewEvent{Type: "Big", Data: []byte(data)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("s%d", i), eventstore.NoStream{}, evs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustRaw(b *testing.B, d bson.D) bson.Raw {
	raw, err := bson.Marshal(d)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
