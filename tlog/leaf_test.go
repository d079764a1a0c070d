package tlog_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// LeafHash, which hashes the fields as it writes them, is the RFC 6962 leaf
// hash of LeafData, for events with and without metadata and with data of
// any size.
func TestLeafHashIsHashOfLeafData(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	for _, e := range []eventstore.Event{
		{ID: "0192f0c4-0000-7000-8000-000000000001", StreamID: "s", Version: 1, Position: 1, Type: "T",
			Data: json.RawMessage(`1`), RecordedAt: at, Hash: strings.Repeat("a", 64)},
		{ID: "0192f0c4-0000-7000-8000-000000000002", StreamID: "order-42", Version: 7, Position: 1234567, Type: "Paid",
			Data: json.RawMessage(`{"amount":"12.50"}`), Metadata: json.RawMessage(`{"by":"ストリーム"}`), RecordedAt: at, Hash: strings.Repeat("b", 64)},
		{ID: "0192f0c4-0000-7000-8000-000000000003", StreamID: "big", Version: 1, Position: 9, Type: "Big",
			Data: json.RawMessage(`"` + strings.Repeat("x", 1<<20) + `"`), RecordedAt: at, Hash: strings.Repeat("c", 64)},
	} {
		want := rfc6962.DefaultHasher.HashLeaf(tlog.LeafData(&e))
		if got := tlog.LeafHash(&e); !bytes.Equal(got, want) {
			t.Errorf("event %s: LeafHash %s, want %s", e.ID, hex.EncodeToString(got), hex.EncodeToString(want))
		}
	}
}
