package eventstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// tinyBudget holds the skeleton of budgetLog (about 40 KB) and a fraction of
// its payloads (about 130 KB).
const tinyBudget = 64 << 10

// budgetLog appends 400 events to 40 streams, 10 each, in commits of one or
// two events: first the "cold-" streams, then the "hot-" ones, interleaved
// within each group, with three event types. It returns every event
// appended.
func budgetLog(t *testing.T, s *eventstore.Store) []eventstore.Event {
	t.Helper()
	ctx := ctxT(t)
	var out []eventstore.Event
	for _, group := range []string{"cold", "hot"} {
		for round := 0; round < 5; round++ {
			for i := 0; i < 20; i++ {
				evs := make([]eventstore.NewEvent, 2)
				for k := range evs {
					evs[k] = ev([]string{"Created", "Updated", "Noted"}[(i+k+round)%3],
						map[string]any{"group": group, "i": i, "round": round, "k": k, "text": "some text of an event"})
				}
				commits := [][]eventstore.NewEvent{evs}
				if (i+round)%2 == 1 {
					commits = [][]eventstore.NewEvent{evs[:1], evs[1:]}
				}
				for _, c := range commits {
					r, err := s.Append(ctx, streamName(group, i), eventstore.Any{}, c...)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, r.Events...)
				}
			}
		}
	}
	return out
}

// sameEvents compares two event lists field by field.
func sameEvents(t *testing.T, what string, got, want []eventstore.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.StreamID != w.StreamID || g.Version != w.Version || g.Position != w.Position ||
			g.Type != w.Type || !bytes.Equal(g.Data, w.Data) || !bytes.Equal(g.Metadata, w.Metadata) ||
			!g.RecordedAt.Equal(w.RecordedAt) || g.Hash != w.Hash {
			// Not the events themselves: their data may be megabytes.
			t.Fatalf("%s: event %d is position %d, %s version %d (%s, %d bytes of data, hash %s)\nwant position %d, %s version %d (%s, %d bytes, hash %s)",
				what, i, g.Position, g.StreamID, g.Version, g.ID, len(g.Data), g.Hash, w.Position, w.StreamID, w.Version, w.ID, len(w.Data), w.Hash)
		}
	}
}

// TestMemoryBudget proves that a store over its memory budget evicts and
// still answers every read exactly as a store without a budget: after
// evictions caused by appends, and when it is built at Open over a log larger
// than its budget.
func TestMemoryBudget(t *testing.T) {
	ctx := ctxT(t)
	w, client, db := openStore(t, eventstore.WithMemoryBudget(tinyBudget))
	appended := budgetLog(t, w)
	ref := openOn(t, client, db) // no budget: everything resident
	all := readAllEvents(t, ref)
	sameEvents(t, "the unbudgeted log", all, appended)
	if st := ref.Stats(); st.Misses != 0 || st.Evictions != 0 || st.ResidentEvents != 400 {
		t.Fatalf("unbudgeted store: %+v", st)
	}
	built := openOn(t, client, db, eventstore.WithMemoryBudget(tinyBudget))

	for _, c := range []struct {
		name string
		s    *eventstore.Store
	}{{"evicted by appends", w}, {"built over budget", built}} {
		t.Run(c.name, func(t *testing.T) {
			s := c.s
			st := s.Stats()
			if st.BudgetBytes != tinyBudget || st.ResidentBytes > tinyBudget || st.Evictions == 0 ||
				st.LogEvents != 400 || st.ResidentEvents >= 400 || st.Streams != 40 {
				t.Fatalf("stats after eviction: %+v", st)
			}
			t.Logf("resident %d of 400 events, %d bytes (skeleton %d), %d evictions",
				st.ResidentEvents, st.ResidentBytes, st.SkeletonBytes, st.Evictions)

			// The first read of a cold stream misses; the second hits.
			before := s.Stats()
			if _, err := s.ReadStream(ctx, "cold-3", eventstore.ReadStreamOptions{}); err != nil {
				t.Fatal(err)
			}
			mid := s.Stats()
			if mid.Misses != before.Misses+1 {
				t.Fatalf("first read of an evicted stream: misses %d -> %d, want one more", before.Misses, mid.Misses)
			}
			if _, err := s.ReadStream(ctx, "cold-3", eventstore.ReadStreamOptions{}); err != nil {
				t.Fatal(err)
			}
			if after := s.Stats(); after.Misses != mid.Misses || after.Hits != mid.Hits+1 {
				t.Fatalf("second read: misses %d -> %d, hits %d -> %d; want a hit", mid.Misses, after.Misses, mid.Hits, after.Hits)
			}

			streams := []string{"cold-0", "cold-7", "cold-19", "hot-0", "hot-11", "hot-19"}
			pages := []eventstore.ReadStreamOptions{
				{}, {From: 3}, {From: 7, Limit: 2}, {From: 1, Limit: 1}, {From: 10},
				{Backward: true}, {Backward: true, From: 5}, {Backward: true, From: 9, Limit: 3}, {Backward: true, From: 1},
			}
			for _, id := range streams {
				for _, p := range pages {
					got, err := s.ReadStream(ctx, id, p)
					if err != nil {
						t.Fatal(err)
					}
					want, err := ref.ReadStream(ctx, id, p)
					if err != nil {
						t.Fatal(err)
					}
					sameEvents(t, fmt.Sprintf("ReadStream(%s, %+v)", id, p), got, want)
				}
				gh, err := s.Head(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				wh, _ := ref.Head(ctx, id)
				if gh.Version != wh.Version || gh.Position != wh.Position || !gh.CreatedAt.Equal(wh.CreatedAt) || !gh.UpdatedAt.Equal(wh.UpdatedAt) {
					t.Fatalf("Head(%s) = %+v, want %+v", id, gh, wh)
				}
			}
			for _, at := range []eventstore.At{eventstore.Now(), eventstore.AtVersion(4), eventstore.AtPosition(1),
				eventstore.AtPosition(150), eventstore.AtPosition(399), eventstore.AtTime(all[77].RecordedAt),
				eventstore.AtTime(all[0].RecordedAt.Add(-time.Second)), eventstore.AtTime(time.Time{})} {
				for _, id := range []string{"cold-5", "hot-5", "nope-1"} {
					got, _ := s.ResolveVersion(ctx, id, at)
					want, _ := ref.ResolveVersion(ctx, id, at)
					if got != want {
						t.Fatalf("ResolveVersion(%s, %+v) = %d, want %d", id, at, got, want)
					}
				}
			}
			if got, want := s.PositionAt(all[123].RecordedAt), ref.PositionAt(all[123].RecordedAt); got != want {
				t.Fatalf("PositionAt = %d, want %d", got, want)
			}
			for _, p := range []int64{0, 1, 17, 200, 400, 401} {
				got, gok := s.RecordedAt(p)
				want, wok := ref.RecordedAt(p)
				if gok != wok || !got.Equal(want) || (wok && !want.Equal(all[p-1].RecordedAt)) {
					t.Fatalf("RecordedAt(%d) = %v %v, want %v %v", p, got, gok, want, wok)
				}
			}

			// Global pages across evicted and resident ranges.
			missesBefore := s.Stats().Misses
			for _, o := range []eventstore.ReadAllOptions{
				{Limit: 7}, {After: 13, Limit: 100}, {After: 190, Limit: 20}, {After: 395},
				{Types: []string{"Noted"}, Limit: 50}, {Types: []string{"Created", "Updated"}, After: 100, Limit: 1000},
				{StreamPrefix: "cold-1", Limit: 30}, {StreamPrefix: "hot-", After: 150, Limit: 10},
				{StreamPrefix: "cold-", Types: []string{"Updated"}, Limit: 1000}, {StreamPrefix: "none-"},
			} {
				got, err := s.ReadAll(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				want, err := ref.ReadAll(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				sameEvents(t, fmt.Sprintf("ReadAll(%+v)", o), got, want)
			}
			if s.Stats().Misses == missesBefore {
				t.Fatalf("no global page missed: the test reads nothing evicted")
			}
			for _, limit := range []int{5, 64, 1000} {
				var got []eventstore.Event
				for after := int64(0); ; {
					page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: limit})
					if err != nil {
						t.Fatal(err)
					}
					if len(page) == 0 {
						break
					}
					got = append(got, page...)
					after = page[len(page)-1].Position
				}
				sameEvents(t, fmt.Sprintf("the log in pages of %d", limit), got, all)
			}

			// Subscriptions from the start catch up from the store, then
			// from memory, and go on live.
			zero, four := int64(0), int64(4)
			cold3 := int64(0)
			for _, e := range all {
				if e.StreamID == "cold-3" && e.Version == 1 {
					cold3 = e.Position - 1
				}
			}
			subCases := []struct {
				name string
				opts eventstore.SubscribeOptions
				want func(e eventstore.Event) bool
			}{
				{"all", eventstore.SubscribeOptions{AfterPosition: &zero}, func(eventstore.Event) bool { return true }},
				{"type", eventstore.SubscribeOptions{AfterPosition: &zero, Types: []string{"Noted"}},
					func(e eventstore.Event) bool { return e.Type == "Noted" }},
				{"prefix", eventstore.SubscribeOptions{AfterPosition: &zero, StreamPrefix: "cold-1"},
					func(e eventstore.Event) bool { return len(e.StreamID) >= 6 && e.StreamID[:6] == "cold-1" }},
				{"stream", eventstore.SubscribeOptions{StreamID: "cold-2", AfterVersion: &four},
					func(e eventstore.Event) bool { return e.StreamID == "cold-2" && e.Version > 4 }},
				// cold-3 was read back above: its events are resident,
				// those of the other cold streams are not.
				{"resident then evicted", eventstore.SubscribeOptions{AfterPosition: &cold3, StreamPrefix: "cold-"},
					func(e eventstore.Event) bool { return e.Position > cold3 && e.StreamID[:5] == "cold-" }},
			}
			for _, sc := range subCases {
				var want []eventstore.Event
				for _, e := range all {
					if sc.want(e) {
						want = append(want, e)
					}
				}
				sub, err := s.Subscribe(ctx, sc.opts)
				if err != nil {
					t.Fatal(err)
				}
				got, err := collect(ctx, sub, len(want))
				sub.Close()
				if err != nil {
					t.Fatalf("subscription %s: %v after %d events", sc.name, err, len(got))
				}
				sameEvents(t, "subscription "+sc.name, got, want)
			}
			if st := s.Stats(); st.ResidentBytes > tinyBudget {
				t.Fatalf("resident bytes %d over the budget %d after reads", st.ResidentBytes, tinyBudget)
			}
		})
	}

	// A subscription that is catching up from the store goes on live.
	zero := int64(0)
	sub, err := w.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	first, err := collect(ctx, sub, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "live subscription, catch-up", first, all[:10])
	r, err := w.Append(ctx, "late-1", eventstore.Any{}, ev("Late", 1))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := collect(ctx, sub, 391)
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "live subscription, the rest", rest, append(all[10:], r.Events...))
}

// TestMemoryBudgetIdempotentReplay: resending an append whose stream was
// evicted returns the original result and writes nothing (guarantee 3); the
// writer's check reads the history that Append loaded back.
func TestMemoryBudgetIdempotentReplay(t *testing.T) {
	ctx := ctxT(t)
	s, client, db := openStore(t, eventstore.WithMemoryBudget(tinyBudget))
	ids := []string{"0190f5a0-0000-7000-8000-0000000000a1", "0190f5a0-0000-7000-8000-0000000000a2"}
	orig, err := s.Append(ctx, "idem-1", eventstore.NoStream{}, evID(ids[0], "A", 1), evID(ids[1], "B", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "idem-1", eventstore.Any{}, ev("C", 3)); err != nil {
		t.Fatal(err)
	}
	// fill evicts idem-1: it writes twice the budget to other streams.
	fill := func(t *testing.T) {
		for i := 0; i < 40; i++ {
			if _, err := s.Append(ctx, streamName("fill", i%10), eventstore.Any{},
				ev("Filler", map[string]string{"pad": strings.Repeat("x", 3000)})); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(t)
	commits := client.Database(db).Collection(eventstore.CommitsCollection)

	cases := []struct {
		name    string
		events  []eventstore.NewEvent
		wantErr error
	}{
		{"same append", []eventstore.NewEvent{evID(ids[0], "A", 1), evID(ids[1], "B", 2)}, nil},
		{"other data", []eventstore.NewEvent{evID(ids[0], "A", 99)}, eventstore.ErrDuplicateEventID},
		{"id in second place", []eventstore.NewEvent{evID("0190f5a0-0000-7000-8000-0000000000bb", "New", 1), evID(ids[1], "B", 2)}, eventstore.ErrDuplicateEventID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fill(t) // evict idem-1 again
			before := s.Stats()
			res, err := s.Append(ctx, "idem-1", eventstore.NoStream{}, c.events...)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if after := s.Stats(); after.Misses != before.Misses+1 {
				t.Fatalf("misses %d -> %d: the history was not loaded back from the store", before.Misses, after.Misses)
			}
			if c.wantErr == nil {
				sameEvents(t, "replayed result", res.Events, orig.Events)
				if res.FirstPosition != orig.FirstPosition || res.LastPosition != orig.LastPosition || res.NextExpectedVersion != 2 {
					t.Fatalf("replay result %+v, want %+v", res, orig)
				}
			}
		})
	}
	// Nothing of the replays was written.
	if n, err := commits.CountDocuments(ctx, bson.D{{Key: "stream", Value: "idem-1"}}); err != nil || n != 2 {
		t.Fatalf("idem-1 has %d commits (%v), want 2", n, err)
	}
	h, err := s.Head(ctx, "idem-1")
	if err != nil || h.Version != 3 {
		t.Fatalf("idem-1 at version %d (%v), want 3", h.Version, err)
	}
	if st := s.Stats(); st.ResidentBytes > tinyBudget {
		t.Fatalf("resident bytes %d over the budget %d", st.ResidentBytes, tinyBudget)
	}
}

// TestMemoryBudgetConcurrent: readers that miss, writers (some with client
// ids, which pin their streams) and a subscriber catching up from the start
// run at once over a store that keeps evicting. The subscriber gets the
// whole log exactly once, in order, and every read is consistent.
func TestMemoryBudgetConcurrent(t *testing.T) {
	ctx := ctxT(t)
	s, client, db := openStore(t, eventstore.WithMemoryBudget(tinyBudget))
	budgetLog(t, s)
	writers, each := 4, 50
	if testing.Short() {
		writers, each = 2, 25
	}
	total := 400 + writers*each
	zero := int64(0)
	sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{AfterPosition: &zero})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []eventstore.Event
	subErr := make(chan error, 1)
	go func() {
		var err error
		got, err = collect(ctx, sub, total)
		subErr <- err
	}()

	stop := make(chan struct{})
	readErr := make(chan error, 3)
	for r := 0; r < 3; r++ {
		go func(r int) {
			for i := 0; ; i++ {
				select {
				case <-stop:
					readErr <- nil
					return
				default:
				}
				id := streamName([]string{"cold", "hot"}[i%2], (i*7+r)%20)
				page, err := s.ReadStream(ctx, id, eventstore.ReadStreamOptions{From: int64(i % 5), Backward: i%3 == 0, Limit: 4})
				if err != nil {
					readErr <- err
					return
				}
				for k := 1; k < len(page); k++ {
					if d := page[k].Version - page[k-1].Version; d != 1 && d != -1 {
						readErr <- fmt.Errorf("ReadStream(%s): versions %d then %d", id, page[k-1].Version, page[k].Version)
						return
					}
				}
				all, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: int64(i * 37 % 400), Limit: 50})
				if err != nil {
					readErr <- err
					return
				}
				for k := 1; k < len(all); k++ {
					if all[k].Position != all[k-1].Position+1 {
						readErr <- fmt.Errorf("ReadAll: positions %d then %d", all[k-1].Position, all[k].Position)
						return
					}
				}
			}
		}(r)
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := ev("Concurrent", map[string]int{"w": w, "i": i})
				if i%2 == 0 {
					e.ID = fmt.Sprintf("0190f5a0-0000-7000-8000-%06x%06x", w, i)
				}
				if _, err := s.Append(ctx, streamName("cold", (w*5+i)%20), eventstore.Any{}, e); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	for r := 0; r < 3; r++ {
		if err := <-readErr; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-subErr; err != nil {
		t.Fatalf("subscriber: %v after %d events", err, len(got))
	}
	checkLog(t, got)
	ref := openOn(t, client, db)
	sameEvents(t, "the subscribed log", got, readAllEvents(t, ref))
	// Pinned streams (appends with ids) cannot be evicted while pinned; when
	// they and the skeleton filled the budget, the next pass waits for
	// another tenth of it (see evict), so that much slack is by design while
	// appends run. Once the last pin is released the next check evicts at
	// once (unpin; TestUnpinReturnsUnderBudget).
	if st := s.Stats(); st.ResidentBytes > tinyBudget+tinyBudget/10 || st.Evictions == 0 {
		t.Fatalf("stats: %+v", st)
	}
}
