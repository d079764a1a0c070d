package graph_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// withTlog gives the resolver a verifiable log, fed by the test from the
// store (the store's own observer hook is tested in package tlog).
func withTlog(lg *tlog.Log) harnessOption {
	return func(c *graph.EndpointConfig) { c.Resolver.TLog = lg }
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProofQueries checks every inclusion proof and consistency proof the
// API serves for a log of 23 events with transparency-dev's verifier, the
// leaf against the leaf data, and the errors of bad sizes.
func TestProofQueries(t *testing.T) {
	key := tamper.Key(t, "hindsight/graph-test")
	lg := tlog.New(tlog.Config{Key: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := newHarness(t, withTlog(lg))
	var none struct{ Checkpoint *struct{ TreeSize string } }
	h.mustDo(`{ checkpoint { treeSize } }`, nil, &none)
	if none.Checkpoint != nil {
		t.Fatalf("checkpoint before any was signed: %+v", none.Checkpoint)
	}
	_, errs := h.do(`{ inclusionProof(position: 1) { rootHash } }`, nil)
	wantCode(t, errs, graph.CodeNotFound) // no event yet

	var events []eventstore.Event
	for i := 0; i < 23; i++ {
		events = append(events, h.appendEvents(fmt.Sprintf("p-%d", i%3), "T", i, 1)...)
	}
	lg.Observe(events[:10])
	lg.Observe(events[10:])
	ctx := context.Background()
	if err := lg.Start(ctx, h.store.Database()); err != nil {
		t.Fatal(err)
	}
	if _, err := lg.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var cp struct {
		Checkpoint struct{ Origin, TreeSize, RootHash, Note, VerifierKey string }
	}
	h.mustDo(`{ checkpoint { origin treeSize rootHash note verifierKey } }`, nil, &cp)
	signed, err := tlog.OpenCheckpoint([]byte(cp.Checkpoint.Note), key.Verifier)
	if err != nil || cp.Checkpoint.TreeSize != "23" || cp.Checkpoint.Origin != "hindsight/graph-test" ||
		hex.EncodeToString(signed.Root) != cp.Checkpoint.RootHash || cp.Checkpoint.VerifierKey != key.VerifierKey {
		t.Fatalf("checkpoint %+v: %v", cp.Checkpoint, err)
	}
	roots := map[int]string{}
	for size := 1; size <= 23; size++ {
		var c struct {
			ConsistencyProof struct {
				FromSize, ToSize, FromRoot, ToRoot string
				Hashes                             []string
			}
		}
		h.mustDo(`query($n: Position!) { consistencyProof(fromSize: $n) { fromSize toSize fromRoot toRoot hashes } }`, map[string]any{"n": size}, &c)
		p := c.ConsistencyProof
		hs := make([][]byte, len(p.Hashes))
		for i := range p.Hashes {
			hs[i] = unhex(t, p.Hashes[i])
		}
		if p.ToSize != "23" || p.ToRoot != cp.Checkpoint.RootHash {
			t.Fatalf("consistency from %d: %+v", size, p)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(size), 23, hs, unhex(t, p.FromRoot), unhex(t, p.ToRoot)); err != nil {
			t.Fatalf("consistency %d..23: %v", size, err)
		}
		roots[size] = p.FromRoot
	}
	for pos := 1; pos <= 23; pos++ {
		for _, size := range []int{pos, 23} {
			var in struct {
				InclusionProof struct {
					Position, TreeSize, LeafHash, LeafData, RootHash string
					Hashes                                           []string
				}
			}
			h.mustDo(`query($p: Position!, $n: Position) { inclusionProof(position: $p, treeSize: $n) { position treeSize leafHash leafData rootHash hashes } }`,
				map[string]any{"p": pos, "n": size}, &in)
			p := in.InclusionProof
			data, err := base64.StdEncoding.DecodeString(p.LeafData)
			if err != nil {
				t.Fatal(err)
			}
			leaf := sha256.Sum256(append([]byte{0}, data...))
			if hex.EncodeToString(leaf[:]) != p.LeafHash || p.LeafData != base64.StdEncoding.EncodeToString(tlog.LeafData(&events[pos-1])) {
				t.Fatalf("position %d: leaf hash %s does not hash the leaf data of the event", pos, p.LeafHash)
			}
			hs := make([][]byte, len(p.Hashes))
			for i := range p.Hashes {
				hs[i] = unhex(t, p.Hashes[i])
			}
			if p.RootHash != roots[size] {
				t.Fatalf("inclusion of %d in %d: root %s, want %s", pos, size, p.RootHash, roots[size])
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(pos-1), uint64(size), leaf[:], hs, unhex(t, p.RootHash)); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", pos, size, err)
			}
		}
	}
	for _, c := range []struct{ query, code string }{
		{`{ inclusionProof(position: 0) { rootHash } }`, graph.CodeBadUserInput},
		{`{ inclusionProof(position: 24) { rootHash } }`, graph.CodeNotFound},
		{`{ inclusionProof(position: 5, treeSize: 4) { rootHash } }`, graph.CodeBadUserInput},
		{`{ inclusionProof(position: 5, treeSize: 24) { rootHash } }`, graph.CodeBadUserInput},
		{`{ consistencyProof(fromSize: 5, toSize: 4) { toRoot } }`, graph.CodeBadUserInput},
		{`{ consistencyProof(fromSize: 5, toSize: 24) { toRoot } }`, graph.CodeBadUserInput},
	} {
		_, errs := h.do(c.query, nil)
		wantCode(t, errs, c.code)
	}
}

// TestProofQueriesWithoutTlog: a server without a verifiable log says so.
func TestProofQueriesWithoutTlog(t *testing.T) {
	h := newHarness(t)
	h.appendEvents("q", "T", 0, 1)
	var cp struct{ Checkpoint *struct{ TreeSize string } }
	h.mustDo(`{ checkpoint { treeSize } }`, nil, &cp)
	if cp.Checkpoint != nil {
		t.Fatalf("checkpoint %+v", cp.Checkpoint)
	}
	for _, q := range []string{`{ inclusionProof(position: 1) { rootHash } }`, `{ consistencyProof(fromSize: 1) { toRoot } }`} {
		_, errs := h.do(q, nil)
		wantCode(t, errs, graph.CodeNotFound)
	}
	var res struct {
		AppendToStream struct{ TreeSize, RootHash string }
	}
	h.mustDo(`mutation { appendToStream(streamId: "q", events: [{type: "T", data: "{}"}]) { treeSize rootHash } }`, nil, &res)
	if res.AppendToStream.TreeSize != "0" || res.AppendToStream.RootHash != "" {
		t.Fatalf("receipt without a tree: %+v", res.AppendToStream)
	}
}
