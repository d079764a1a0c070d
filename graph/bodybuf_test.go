package graph_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
)

// TestBodyBuffersReadIntoAgain: the buffer a large body was read into is
// read into again by later bodies once its request has ended, and what the
// earlier requests stored stays what they sent, byte for byte: the store
// keeps copies of event data and metadata, never views of a body. Appends
// run concurrently (-race sees a buffer handed on while still read) and then
// one after another, so that each reads into the buffer of the one before.
func TestBodyBuffersReadIntoAgain(t *testing.T) {
	h := newHarness(t)
	const size = 3 << 19 // 1.5 MiB: a large body (admission.go)
	data := func(i int) (string, string) {
		c := string(rune('a' + i))
		return `{"pad":"` + strings.Repeat(c, size) + `"}`, `{"by":"` + strings.Repeat(c, 10) + `"}`
	}
	post := func(i int) error {
		d, m := data(i)
		body := `{"query":"mutation($e: [NewEvent!]!) { appendToStream(streamId: \"buf-` + fmt.Sprint(i) +
			`\", events: $e) { lastPosition } }","variables":{"e":[{"type":"T","data":` + d + `,"metadata":` + m + `}]}}`
		resp, err := http.Post(h.srv.URL+"/graphql", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), "lastPosition") {
			return fmt.Errorf("append %d: %d %s", i, resp.StatusCode, out)
		}
		return nil
	}
	const concurrent, sequential = 6, 4
	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for i := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- post(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := concurrent; i < concurrent+sequential; i++ {
		if err := post(i); err != nil {
			t.Fatal(err)
		}
		if n := graph.KeptBodyBuffers(h.endpoint); n == 0 {
			t.Fatalf("after append %d no body buffer is kept for the next", i)
		}
	}
	for i := range concurrent + sequential {
		evs, err := h.store.ReadStream(context.Background(), fmt.Sprintf("buf-%d", i), eventstore.ReadStreamOptions{})
		if err != nil || len(evs) != 1 {
			t.Fatalf("stream buf-%d: %d events, %v", i, len(evs), err)
		}
		d, m := data(i)
		if string(evs[0].Data) != d || string(evs[0].Metadata) != m {
			t.Fatalf("append %d stored data %.20s… (%d bytes), metadata %.20s, want %.20s… (%d bytes), %s",
				i, evs[0].Data, len(evs[0].Data), evs[0].Metadata, d, len(d), m)
		}
	}
}
