package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/projections"
)

// maxFoldBytes is the most event data a read of a state folds once the
// stream has been folded: snapshot points every 8 MiB of data, plus the
// event that passes them (at most an append).
const maxFoldBytes = 8<<20 + eventstore.MaxAppendBytes

func stateTooLarge(err error) bool { return errors.Is(err, projections.ErrStateTooLarge) }

// foldFromStart is the stream's state at version v folded from its first
// event with the merge projection alone, as Stream.state encodes it.
func foldFromStart(t *testing.T, events []eventstore.Event, v int64) string {
	t.Helper()
	p := projections.MergeProjection{}
	s := p.Initial()
	for _, e := range events[:v] {
		s = p.Apply(s, e)
	}
	b, err := json.Marshal(s) // what Stream.state wrote before it had its own encoder
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStreamStateAtTheAppendLimitFoldsBoundedData writes events at the 4
// MiB append limit, a state just under the state limit, and reads the state
// at several versions after a first read folded the stream: each answer is
// the state folded from the start, byte for byte, and each read folds at
// most maxFoldBytes of data (snapshots every 100 versions alone let it fold
// every event of the stream).
func TestStreamStateAtTheAppendLimitFoldsBoundedData(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	const stream, n = "large", 12
	// Odd versions replace k with ~4 MiB, even ones change small members.
	for i := range n {
		ev := bigEvent("k", maxEventData-64, byte('a'+i))
		if i%2 == 1 {
			ev.Data = json.RawMessage(fmt.Sprintf(`{"v":%d,"m":{"x":%d,"y":null},"big":%q}`, i, i, strings.Repeat("<", i)))
		}
		if _, err := store.Append(ctx, stream, eventstore.Exact(int64(i)), ev); err != nil {
			t.Fatal(err)
		}
	}
	var events []eventstore.Event
	for len(events) < n { // a page stops at 4 MiB of data
		page, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: int64(len(events)), Limit: n})
		if err != nil || len(page) == 0 {
			t.Fatalf("read after %d events: %v", len(events), err)
		}
		events = append(events, page...)
	}
	if _, _, err := svc.StreamState(ctx, stream, eventstore.AtVersion(n)); err != nil {
		t.Fatal(err)
	}
	settleSnapshots(t, svc)
	for _, v := range []int64{1, 2, 5, 8, 11, 12} {
		before := svc.Stats().EventsFolded
		got, version, err := svc.StreamState(ctx, stream, eventstore.AtVersion(v))
		if err != nil || version != v {
			t.Fatalf("state at %d: version %d, %v", v, version, err)
		}
		if want := foldFromStart(t, events, v); string(got) != want {
			t.Errorf("state at %d: %d bytes differ from the %d folded from the start", v, len(got), len(want))
		}
		k := int64(svc.Stats().EventsFolded - before)
		data := 0
		for _, e := range events[v-k : v] {
			data += len(e.Data)
		}
		if data > maxFoldBytes {
			t.Errorf("state at %d folded %d events, %d bytes of data; the bound is %d", v, k, data, maxFoldBytes)
		}
	}
}

// TestStreamStateOverTheLimitIsRefused: a state over MaxStreamStateBytes as
// JSON is ErrStateTooLarge at its version and every later one (even when a
// later event shrinks it: each read would fold through it), writes nothing,
// and leaves the versions before it and other streams served.
func TestStreamStateOverTheLimitIsRefused(t *testing.T) {
	store, _, _ := openStore(t)
	svc := openService(t, store, projections.Options{})
	ctx := ctxT(t)
	half := projections.MaxStreamStateBytes / 2
	// {"a":"...","b":"..."} of exactly limit+extra bytes as JSON.
	twoHalves := func(extra int) []string {
		a := half - len(`{"a":"",`)
		b := projections.MaxStreamStateBytes - half - len(`"b":""}`) + extra
		return []string{fmt.Sprintf(`{"a":%q}`, strings.Repeat("a", a)), fmt.Sprintf(`{"b":%q}`, strings.Repeat("b", b))}
	}
	big := func(key string) string { return string(bigEvent(key, maxEventData, 'x').Data) }
	tests := []struct {
		name       string
		events     []string
		tooLarge   int64 // first refused version; 0 = none
		wantBytes  int   // the state's size there
		wantValues int   // its values, when they are what is over the limit
	}{
		{"exactly at the limit is served", twoHalves(0), 0, 0, 0},
		{"one byte over", twoHalves(1), 2, projections.MaxStreamStateBytes + 1, 0},
		{"three 4 MiB members", []string{big("k0"), big("k1"), big("k2")}, 2, 2*maxEventData - 1, 0},
		// 700 KiB of '<' are 4.1 MiB as JSON: encoding/json writes \u003c.
		{"escaping grows past the limit", []string{`{"s":"` + strings.Repeat("<", 700<<10) + `"}`}, 1, 700<<10*6 + len(`{"s":""}`), 0},
		{"refused after it shrinks", []string{big("k0"), big("k1"), `{"k0":null,"k1":null}`}, 2, 2*maxEventData - 1, 0},
		// {"a":[0,...]}: the object, the array and its elements.
		{"exactly at the value limit is served", []string{zeros(projections.MaxStreamStateValues - 2)}, 0, 0, 0},
		{"one value over", []string{`{"b":1}`, zeros(projections.MaxStreamStateValues - 2)}, 2,
			len(`{"b":1,"a":[]}`) + 2*(projections.MaxStreamStateValues-2) - 1, projections.MaxStreamStateValues + 1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream := fmt.Sprintf("s%d", i)
			for j, d := range tc.events {
				if _, err := store.Append(ctx, stream, eventstore.Exact(int64(j)), eventstore.NewEvent{Type: "E", Data: json.RawMessage(d)}); err != nil {
					t.Fatal(err)
				}
			}
			head := int64(len(tc.events))
			savedBefore := svc.Stats().SnapshotsSaved
			for v := int64(1); v <= head; v++ {
				// Twice: the second read starts from what the first left.
				for range 2 {
					state, version, err := svc.StreamState(ctx, stream, eventstore.AtVersion(v))
					if tc.tooLarge == 0 || v < tc.tooLarge {
						if err != nil || version != v || len(state) > projections.MaxStreamStateBytes {
							t.Fatalf("state at %d: %d bytes, version %d, %v", v, len(state), version, err)
						}
						continue
					}
					var tl *projections.StateTooLargeError
					if !errors.As(err, &tl) || !stateTooLarge(err) || state != nil {
						t.Fatalf("state at %d: %d bytes, %v; want a StateTooLargeError", v, len(state), err)
					}
					want := projections.StateTooLargeError{StreamID: stream, Version: tc.tooLarge, Bytes: tc.wantBytes,
						Limit: projections.MaxStreamStateBytes, Values: tc.wantValues}
					if *tl != want {
						t.Fatalf("state at %d: %+v, want %+v", v, *tl, want)
					}
				}
			}
			if _, _, err := svc.StreamState(ctx, stream, eventstore.Now()); (err != nil) != (tc.tooLarge != 0) {
				t.Fatalf("current state: %v", err)
			}
			if tc.tooLarge != 0 {
				// A refusal is remembered: the log does not change, so no
				// later read at or after it folds again.
				folded := svc.Stats().EventsFolded
				for v := tc.tooLarge; v <= head; v++ {
					if _, _, err := svc.StreamState(ctx, stream, eventstore.AtVersion(v)); !stateTooLarge(err) {
						t.Fatalf("state at %d: %v, want a StateTooLargeError", v, err)
					}
				}
				if n := svc.Stats().EventsFolded - folded; n != 0 {
					t.Fatalf("refusing again folded %d events", n)
				}
			}
			settleSnapshots(t, svc)
			if h, err := store.Head(ctx, stream); err != nil || h.Version != head {
				t.Fatalf("head %d, %v; want %d", h.Version, err, head)
			}
			for v := max(tc.tooLarge, 1); tc.tooLarge != 0 && v <= head; v++ {
				if hasSnapshot(store, stream, projections.MergeProjectionName, 1, v) {
					t.Errorf("a snapshot at version %d, past the refused state", v)
				}
			}
			if failed := svc.Stats().SnapshotsFailed; failed != 0 {
				t.Errorf("%d snapshots failed (%d saved since the case began)", failed, svc.Stats().SnapshotsSaved-savedBefore)
			}
		})
	}
	// Other streams are served as before.
	if _, err := store.Append(ctx, "small", eventstore.Any{}, eventstore.NewEvent{Type: "E", Data: json.RawMessage(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if state, _, err := svc.StreamState(ctx, "small", eventstore.Now()); err != nil || string(state) != `{"a":1}` {
		t.Fatalf("small stream: %s, %v", state, err)
	}
}

// zeros is {"a":[0,0,...]} with n zeros: n+2 JSON values.
func zeros(n int) string { return `{"a":[` + strings.TrimSuffix(strings.Repeat("0,", n), ",") + `]}` }
