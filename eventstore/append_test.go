package eventstore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
)

func TestExpectedVersionMatrix(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	// "two" has 2 events; "none" has none.
	if _, err := s.Append(ctx, "two", eventstore.NoStream{}, ev("A", 1), ev("B", 2)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedState
		wantErr  bool
		actual   int64
	}{
		{"any on missing", "none", eventstore.Any{}, false, 0},
		{"any on existing", "two", eventstore.Any{}, false, 2},
		{"no stream on missing", "none", eventstore.NoStream{}, false, 0},
		{"no stream on existing", "two", eventstore.NoStream{}, true, 2},
		{"exists on missing", "none", eventstore.StreamExists{}, true, 0},
		{"exists on existing", "two", eventstore.StreamExists{}, false, 2},
		{"exact 0 on missing", "none", eventstore.Exact(0), false, 0},
		{"exact 0 on existing", "two", eventstore.Exact(0), true, 2},
		{"exact match", "two", eventstore.Exact(2), false, 2},
		{"exact behind", "two", eventstore.Exact(1), true, 2},
		{"exact ahead", "two", eventstore.Exact(3), true, 2},
		{"nil is any", "two", nil, false, 2},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case gets its own copy of the stream state.
			stream := streamName(c.stream, i)
			if c.stream == "two" {
				if _, err := s.Append(ctx, stream, eventstore.NoStream{}, ev("A", 1), ev("B", 2)); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.Append(ctx, stream, c.expected, ev("C", 3))
			if !c.wantErr {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if res.NextExpectedVersion != c.actual+1 {
					t.Fatalf("next expected version %d, want %d", res.NextExpectedVersion, c.actual+1)
				}
				return
			}
			var wev *eventstore.WrongExpectedVersionError
			if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || !errors.As(err, &wev) {
				t.Fatalf("err = %v, want wrong expected version", err)
			}
			if wev.Actual != c.actual || wev.StreamID != stream {
				t.Fatalf("conflict reports stream %q actual %d, want %q %d", wev.StreamID, wev.Actual, stream, c.actual)
			}
			h, err := s.Head(ctx, stream)
			if c.actual == 0 {
				if !errors.Is(err, eventstore.ErrStreamNotFound) {
					t.Fatalf("head after failed append: %v", err)
				}
			} else if h.Version != c.actual {
				t.Fatalf("failed append changed the stream to version %d", h.Version)
			}
		})
	}
}

func TestConcurrentSameExpectedVersionOneWins(t *testing.T) {
	s, _, _ := openStore(t)
	ctx := ctxT(t)
	for round := 0; round < 20; round++ {
		stream := streamName("race", round)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, errs[i] = s.Append(ctx, stream, eventstore.NoStream{}, ev("Won", i))
			}(i)
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d appends won, want exactly 1", round, wins)
		}
		h, _ := s.Head(ctx, stream)
		if h.Version != 1 {
			t.Fatalf("stream at version %d, want 1", h.Version)
		}
	}
}

func TestIdempotentAppend(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	ids := []string{"0190f5a0-0000-7000-8000-000000000001", "0190f5a0-0000-7000-8000-000000000002"}
	first, err := s.Append(ctx, "idem", eventstore.NoStream{}, evID(ids[0], "A", 1), evID(ids[1], "B", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "idem", eventstore.Any{}, ev("C", 3)); err != nil {
		t.Fatal(err)
	}
	// The same append again, even with an expected version that no longer
	// holds, returns the original result.
	again, err := s.Append(ctx, "idem", eventstore.NoStream{}, evID(ids[0], "A", 1), evID(ids[1], "B", 2))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if again.FirstPosition != first.FirstPosition || again.LastPosition != first.LastPosition ||
		again.NextExpectedVersion != 2 || again.Events[1].Hash != first.Events[1].Hash {
		t.Fatalf("replay result %+v differs from original %+v", again, first)
	}
	n, err := client.Database(db).Collection(eventstore.CommitsCollection).CountDocuments(ctx, bson.D{})
	if err != nil || n != 2 {
		t.Fatalf("store holds %d commits (%v), want 2", n, err)
	}
	// Concurrent replays of one new append write it once.
	id3 := "0190f5a0-0000-7000-8000-000000000003"
	var wg sync.WaitGroup
	results := make([]eventstore.AppendResult, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := s.Append(ctx, "idem", eventstore.Any{}, evID(id3, "D", 4))
			if err != nil {
				t.Errorf("concurrent replay: %v", err)
			}
			results[i] = r
		}(i)
	}
	wg.Wait()
	for _, r := range results {
		if r.FirstPosition != results[0].FirstPosition {
			t.Fatalf("concurrent replays got positions %d and %d", r.FirstPosition, results[0].FirstPosition)
		}
	}
	// Reusing an id for other content is an error, and writes nothing.
	cases := []struct {
		name   string
		events []eventstore.NewEvent
	}{
		{"other data", []eventstore.NewEvent{evID(ids[0], "A", 99)}},
		{"other type", []eventstore.NewEvent{evID(ids[0], "Z", 1)}},
		{"id in second place", []eventstore.NewEvent{evID("0190f5a0-0000-7000-8000-0000000000bb", "New", 1), evID(ids[1], "B", 2)}},
		{"other order", []eventstore.NewEvent{evID(ids[1], "B", 2), evID(ids[0], "A", 1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Append(ctx, "idem", eventstore.Any{}, c.events...)
			if !errors.Is(err, eventstore.ErrDuplicateEventID) {
				t.Fatalf("err = %v, want ErrDuplicateEventID", err)
			}
		})
	}
	h, _ := s.Head(ctx, "idem")
	if h.Version != 4 {
		t.Fatalf("stream at version %d, want 4", h.Version)
	}
}

func TestLimits(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	many := make([]eventstore.NewEvent, eventstore.MaxEventsPerAppend+1)
	for i := range many {
		many[i] = ev("E", i)
	}
	big := strings.Repeat("x", eventstore.MaxAppendBytes/2)
	cases := []struct {
		name   string
		stream string
		events []eventstore.NewEvent
	}{
		{"empty stream id", "", []eventstore.NewEvent{ev("E", 1)}},
		{"stream id too long", strings.Repeat("s", 257), []eventstore.NewEvent{ev("E", 1)}},
		{"stream id bad char", "a b", []eventstore.NewEvent{ev("E", 1)}},
		{"reserved stream", "$all", []eventstore.NewEvent{ev("E", 1)}},
		{"no events", "s", nil},
		{"empty type", "s", []eventstore.NewEvent{ev("", 1)}},
		{"type too long", "s", []eventstore.NewEvent{ev(strings.Repeat("t", 257), 1)}},
		{"reserved type", "s", []eventstore.NewEvent{ev("$snapshot", 1)}},
		{"too many events", "s", many},
		{"too many bytes", "s", []eventstore.NewEvent{ev("E", big), ev("E", big), ev("E", "x")}},
		{"invalid json", "s", []eventstore.NewEvent{{Type: "E", Data: []byte("{nope")}}},
		{"missing data", "s", []eventstore.NewEvent{{Type: "E"}}},
		{"bad id", "s", []eventstore.NewEvent{evID("not-a-uuid", "E", 1)}},
		{"ids on some events only", "s", []eventstore.NewEvent{ev("E", 1), evID("0190f5a0-0000-7000-8000-00000000000c", "E", 2)}},
		{"same id twice", "s", []eventstore.NewEvent{evID("0190f5a0-0000-7000-8000-00000000000a", "E", 1), evID("0190f5a0-0000-7000-8000-00000000000a", "E", 2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Append(ctx, c.stream, eventstore.Any{}, c.events...)
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
	// The longest allowed values pass.
	if _, err := s.Append(ctx, strings.Repeat("s", 256), eventstore.Any{}, ev(strings.Repeat("t", 256), 1)); err != nil {
		t.Fatalf("limits inclusive: %v", err)
	}
	n, _ := client.Database(db).Collection(eventstore.CommitsCollection).CountDocuments(ctx, bson.D{})
	if n != 1 {
		t.Fatalf("store holds %d commits, want only the valid one", n)
	}
}

func TestConcurrentAppendsOneGlobalOrder(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	const writers, each = 32, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(ctx, streamName("w", w%8), eventstore.Any{}, ev("E", i), ev("F", i)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	log := readAllEvents(t, s)
	if len(log) != writers*each*2 {
		t.Fatalf("log has %d events, want %d", len(log), writers*each*2)
	}
	checkLog(t, log)
	st := s.Stats()
	if st.Batches >= st.BatchedAppends {
		t.Logf("group commit did not batch: %d round trips for %d appends", st.Batches, st.BatchedAppends)
	}
	// A fresh store built from the same database sees the same log.
	s2 := openOn(t, client, db)
	log2 := readAllEvents(t, s2)
	if len(log2) != len(log) || log2[len(log2)-1].Hash != log[len(log)-1].Hash {
		t.Fatalf("rebuilt image differs: %d events", len(log2))
	}
}

// Commits of many events are encoded by the writer into one reused buffer
// (commitArena). Concurrent appends, batched together, of sizes that make
// the buffer grow, overflow what it keeps (a batch over 8 MiB) and shrink
// again, must each be stored exactly as sent: a fresh store built from the
// database alone reads every event back, byte for byte.
func TestEncodedCommitsStoredExactly(t *testing.T) {
	s, client, db := openStore(t)
	ctx := ctxT(t)
	sizes := []int{64, 4 << 10, 300 << 10, 3 << 20 / 10} // data per event; appends of 10 events
	const rounds = 3
	sent := map[string][]json.RawMessage{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				stream := fmt.Sprintf("arena-%d-%d", w, r)
				evs := make([]eventstore.NewEvent, 10)
				for i := range evs {
					evs[i] = eventstore.NewEvent{Type: "E", Data: jsonOfSize(sizes[(w+r)%len(sizes)]+i, byte('a'+(w*rounds+r+i)%26))}
				}
				if _, err := s.Append(ctx, stream, eventstore.NoStream{}, evs...); err != nil {
					t.Errorf("append %s: %v", stream, err)
					return
				}
				mu.Lock()
				for _, e := range evs {
					sent[stream] = append(sent[stream], e.Data)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := readAllEvents(t, s)
	got := readAllEvents(t, openOn(t, client, db))
	sameEvents(t, "rebuilt from the store", got, want)
	for _, e := range got {
		data := sent[e.StreamID][e.Version-1]
		if string(e.Data) != string(data) {
			t.Fatalf("%s v%d: stored %d bytes starting %.20q, sent %d starting %.20q", e.StreamID, e.Version, len(e.Data), e.Data, len(data), data)
		}
	}
	if len(got) != 8*rounds*10 {
		t.Fatalf("%d events stored, want %d", len(got), 8*rounds*10)
	}
}
