package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hindsight-dev/hindsight/internal/benchserver"
)

// -writes N: a writer appends N small events a second while the contention
// phase measures, idle and under attack alike. The server executes heavy
// reads on a thread at a low OS priority (graph/priority.go); an append
// waits for the store's image lock that such a read may hold, and readers
// queue behind the waiting append. With -probe-query reading events, the
// probe shows what that costs a cheap read.
const writerStream = "abuse-writer"

// startWriter starts the writer (none for perSecond ≤ 0); stop ends it and
// returns its first error.
func startWriter(ctx context.Context, c *benchserver.Client, perSecond int) (stop func() error) {
	if perSecond <= 0 {
		return func() error { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		t := time.NewTicker(time.Second / time.Duration(perSecond))
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-t.C:
			}
			err := c.Do(ctx, `mutation($e: [NewEvent!]!) { appendToStream(streamId: "`+writerStream+`", events: $e) { lastPosition } }`,
				map[string]any{"e": []any{map[string]any{"type": "Written", "data": map[string]any{"n": n}}}}, nil)
			if err != nil && ctx.Err() == nil {
				done <- fmt.Errorf("writer: %w", err)
				return
			}
		}
	}()
	return func() error {
		cancel()
		return <-done
	}
}
