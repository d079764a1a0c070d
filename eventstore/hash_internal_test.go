package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// One hasher reused over a group commit's events gives each the hash and the
// content sum it gets alone, whatever the lengths of the events before it.
func TestHasherReused(t *testing.T) {
	at := time.Date(2026, 11, 30, 4, 0, 0, 120000000, time.UTC)
	evs := []Event{
		{ID: "0192f0c4-0000-7000-8000-0000000000a1", StreamID: strings.Repeat("long-stream-", 20), Version: 12345, Type: strings.Repeat("T", 256),
			Data: []byte(`{"a":"` + strings.Repeat("x", 5000) + `"}`), Metadata: []byte(`{"m":1}`), RecordedAt: at},
		{ID: "0192f0c4-0000-7000-8000-0000000000a2", StreamID: "s", Version: 1, Type: "U", Data: []byte(`1`), RecordedAt: at.Add(time.Second)},
		{ID: "0192f0c4-0000-7000-8000-0000000000a3", StreamID: "ストリーム", Version: 2, Type: "V", Data: []byte(`"é"`), Metadata: []byte(`null`), RecordedAt: at.In(time.FixedZone("x", 3600))},
	}
	var h chainHasher
	prev := ""
	for i := range evs {
		e := &evs[i]
		want := chainHash(prev, e.StreamID, e.Version, e.ID, e.Type, e.Data, e.Metadata, e.RecordedAt)
		if got := h.eventHash(prev, e); got != want {
			t.Fatalf("event %d: reused hasher %s, alone %s", i, got, want)
		}
		sum := sha256.Sum256([]byte(e.Type + "\x00" + string(e.Data) + "\x00" + string(e.Metadata)))
		if got, want := h.contentSum(e), hex.EncodeToString(sum[:12]); got != want {
			t.Fatalf("event %d: content sum %s, want %s", i, got, want)
		}
		prev = want
	}
}
