package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// BenchmarkProofQueries measures inclusion and consistency proof queries
// over HTTP and GraphQL against the whole server holding 200,000 events
// (target: p50 ≤ 1 ms), and reports p50 and p99 in µs. The log is imported
// in large commits, so that building it takes seconds.
//
//	go test . -run XXX -bench ProofQueries -benchtime 2000x
func BenchmarkProofQueries(b *testing.B) {
	const events = 200_000
	client, db := storetest.Client(b)
	s := storetest.Store(b, client, db)
	ctx := context.Background()
	at := time.Now().UTC()
	prev := map[string]string{}
	page := make([]eventstore.Event, 0, 10_000)
	for p := int64(1); p <= events; p++ {
		stream := fmt.Sprintf("b-%d", (p-1)/1000%100) // 1,000 events per commit
		v := (p-1)/100_000*1000 + (p-1)%1000 + 1
		e := eventstore.Event{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", p), StreamID: stream, Version: v, Position: p,
			Type: "E", Data: []byte(fmt.Sprintf(`{"p":%d}`, p)), RecordedAt: at}
		e.Hash = tamper.ChainHash(prev[stream], stream, v, e.ID, e.Type, e.Data, nil, at)
		prev[stream] = e.Hash
		page = append(page, e)
		if len(page) == cap(page) {
			if err := s.Import(ctx, page); err != nil {
				b.Fatal(err)
			}
			page = page[:0]
		}
	}
	tamper.CloseStore(b, s)
	keyFile := filepath.Join(b.TempDir(), "key")
	if _, _, err := tlog.LoadOrGenerateKey(keyFile, "bench"); err != nil {
		b.Fatal(err)
	}
	ts := startTestServer(b, db, keyFile)
	if _, err := ts.comp.tlog.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	query := func(q string) {
		body, _ := json.Marshal(map[string]string{"query": q})
		resp, err := hc.Post(ts.url+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out struct{ Errors []any }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) > 0 || resp.StatusCode != 200 {
			b.Fatalf("%s: %v %v", resp.Status, err, out.Errors)
		}
		resp.Body.Close()
	}
	for _, kind := range []string{"inclusion", "consistency"} {
		b.Run(kind, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				p := strconv.Itoa(1 + (i*7919)%events)
				q := `{ inclusionProof(position: "` + p + `") { hashes rootHash } }`
				if kind == "consistency" {
					q = `{ consistencyProof(fromSize: "` + p + `") { hashes toRoot } }`
				}
				start := time.Now()
				query(q)
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-p50")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "µs-p99")
		})
	}
}
