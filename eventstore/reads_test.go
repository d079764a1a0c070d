package eventstore_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// jsonOfSize returns a JSON string value of exactly n bytes.
func jsonOfSize(n int, fill byte) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat(string(fill), n-2) + `"`)
}

// bigLog appends commits at the append limit (one 4 MiB event; 1,000
// events of 4 KiB) between small ones, and returns what it appended in
// position order. Its size is about 6 MiB times scale.
func bigLog(t *testing.T, s *eventstore.Store, scale int) []eventstore.Event {
	t.Helper()
	ctx := ctxT(t)
	var log []eventstore.Event
	add := func(stream string, evs ...eventstore.NewEvent) {
		res, err := s.Append(ctx, stream, nil, evs...)
		if err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
		log = append(log, res.Events...)
	}
	many := make([]eventstore.NewEvent, eventstore.MaxEventsPerAppend)
	for i := range many {
		many[i] = eventstore.NewEvent{Type: "Part", Data: jsonOfSize(eventstore.MaxAppendBytes/eventstore.MaxEventsPerAppend, 'p')}
	}
	for i := 0; i < scale; i++ {
		for j := 0; j < 20; j++ {
			add(streamName("small", j), ev("Small", map[string]int{"i": i, "j": j}))
		}
		add("big", eventstore.NewEvent{Type: "Big", Data: jsonOfSize(eventstore.MaxAppendBytes, byte('a'+i%26))})
		add(streamName("medium", i%3), eventstore.NewEvent{Type: "Medium", Data: jsonOfSize(64<<10, 'm')})
		if i%3 == 0 {
			add("many", many...)
		}
	}
	return log
}

// TestReadsBoundedByBytes proves that every read of the log keeps each reply
// of the store under MaxReplyBytes (12 MiB, under MongoDB's 16 MiB cap),
// with commits at the 4 MiB append limit: the image build, the global and
// stream miss paths, a subscription catching up over evicted history, the
// verification of a stream and the tailer's read of another instance's
// commits. FerretDB does not bound replies itself: before, the build asked
// for 1,000 commits per reply, and failed with "length of read message too
// large" once they passed the driver's 48 MB.
func TestReadsBoundedByBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25 MB and scans it often: about a minute, five under -race")
	}
	const scale = 4 // about 25 MB: two 4 MiB commits in a reply would pass 12 MiB
	client, db := storetest.Client(t)
	// Appends of 4 MiB are slow on a busy machine: allow them time.
	w := openOn(t, client, db, eventstore.WithOpTimeout(time.Minute))
	want := bigLog(t, w, scale)

	mc, replies := storetest.MeteredClient(t)
	// A budget far below the log: most payloads are evicted, so reads miss.
	r := openOn(t, mc, db, eventstore.WithMemoryBudget(8<<20))
	ctx := ctxT(t)
	check := func(what string) {
		t.Helper()
		max, cmd, n := replies.Max()
		if n == 0 {
			t.Fatalf("%s: no reply of the store was seen", what)
		}
		if max > eventstore.MaxReplyBytes {
			t.Fatalf("%s: a reply to %s held %d bytes, over MaxReplyBytes (%d)", what, cmd, max, eventstore.MaxReplyBytes)
		}
		t.Logf("%s: %d replies, the largest %d bytes (%s)", what, n, max, cmd)
		replies.Reset()
	}
	if got := r.HeadPosition(); got != want[len(want)-1].Position {
		t.Fatalf("image built to position %d, want %d", got, want[len(want)-1].Position)
	}
	if st := r.Stats(); st.Evictions == 0 {
		t.Fatalf("nothing was evicted under a budget of 8 MiB; the miss paths are not tested")
	}
	check("image build")

	sameEvents(t, "ReadAll", readAllEvents(t, r), want)
	check("ReadAll")

	var big []eventstore.Event
	for _, e := range want {
		if e.StreamID == "big" {
			big = append(big, e)
		}
	}
	// A page holds at most MaxPageBytes of data: here one 4 MiB event.
	var stream []eventstore.Event
	for {
		page, err := r.ReadStream(ctx, "big", eventstore.ReadStreamOptions{From: int64(len(stream)), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) != 1 {
			t.Fatalf("a page of %d events of 4 MiB, over MaxPageBytes", len(page))
		}
		stream = append(stream, page...)
	}
	sameEvents(t, "ReadStream", stream, big)
	check("ReadStream")

	for _, c := range []struct {
		name string
		opts eventstore.SubscribeOptions
		want []eventstore.Event
	}{
		{"subscription to the log", eventstore.SubscribeOptions{AfterPosition: new(int64)}, want},
		{"subscription to a stream", eventstore.SubscribeOptions{StreamID: "big", AfterVersion: new(int64)}, big},
	} {
		sub, err := r.Subscribe(ctx, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []eventstore.Event
		for len(got) < len(c.want) {
			e, err := sub.Recv(ctx)
			if err != nil {
				t.Fatalf("%s: after %d events: %v", c.name, len(got), err)
			}
			got = append(got, e)
		}
		sub.Close()
		sameEvents(t, c.name, got, c.want)
		check(c.name)
	}

	v, err := r.VerifyStream(ctx, "big")
	if err != nil || !v.OK || v.CheckedEvents != len(big) {
		t.Fatalf("VerifyStream(big) = %+v, %v; want OK over %d events", v, err, len(big))
	}
	check("VerifyStream")

	// Commits of another instance too large for its beacon: the reader's
	// tailer reads them from the log.
	more := bigLog(t, w, 2)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "ReadAll after Sync", readAllEvents(t, r), append(want, more...))
	check("tailer")
}
