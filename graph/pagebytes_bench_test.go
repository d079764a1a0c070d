package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// BenchmarkPageOfLargeEvents measures what the largest page of events costs
// the server over a log of 1,000 events of 64 KiB (the size of event in the
// data set that broke last round): events(first: 1000) with their data, from
// the memory image and, with a memory budget of 4 MiB, from the store. It
// reports the bytes allocated by the process per request (the client reads
// into a discarding buffer) and the response's size and events.
//
//	go test ./graph -run '^$' -bench PageOfLargeEvents -benchtime 5x
func BenchmarkPageOfLargeEvents(b *testing.B) {
	for _, src := range []struct {
		name   string
		budget int64
	}{{"image", 0}, {"store", 4 << 20}} {
		b.Run(src.name, func(b *testing.B) {
			store, _, srv := serveBenchStore(b, src.budget, graph.Limits{})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			data := json.RawMessage(`"` + strings.Repeat("x", 64<<10-2) + `"`)
			for i := 0; i < 1000; {
				var batch []eventstore.NewEvent
				for ; i < 1000 && len(batch) < 60; i++ {
					batch = append(batch, eventstore.NewEvent{Type: "Large", Data: data})
				}
				if _, err := store.Append(ctx, fmt.Sprintf("large-%d", i%7), eventstore.Any{}, batch...); err != nil {
					b.Fatal(err)
				}
			}
			query := func(fields string) string {
				return `{"query":"{ events(first: 1000) { edges { node { ` + fields + ` } } pageInfo { hasNextPage } } }"}`
			}
			post := func(body string, w io.Writer) {
				resp, err := http.Post(srv.URL+"/graphql", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				defer resp.Body.Close()
				if _, err := io.Copy(w, resp.Body); err != nil {
					b.Fatal(err)
				}
			}
			var alloc, size uint64
			for b.Loop() {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				var n byteCount
				post(query("position data"), &n)
				runtime.ReadMemStats(&m1)
				alloc += m1.TotalAlloc - m0.TotalAlloc
				size += uint64(n)
			}
			// The same page without the data, to count its events.
			var page strings.Builder
			post(query("position"), &page)
			var out struct {
				Data struct {
					Events struct{ Edges []json.RawMessage }
				}
			}
			if err := json.Unmarshal([]byte(page.String()), &out); err != nil {
				b.Fatal(err)
			}
			events := len(out.Data.Events.Edges)
			n := float64(b.N)
			b.ReportMetric(float64(alloc)/n/(1<<20), "alloc-MiB")
			b.ReportMetric(float64(size)/n/(1<<20), "response-MiB")
			b.ReportMetric(float64(events), "events")
		})
	}
}

// byteCount is a writer that counts what it is given.
type byteCount int

func (c *byteCount) Write(p []byte) (int, error) {
	*c += byteCount(len(p))
	return len(p), nil
}
