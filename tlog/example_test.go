package tlog_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// A tree of three events, a signed checkpoint of it, and an inclusion proof
// checked the way any client checks one: with transparency-dev/merkle's
// verifier and the checkpoint's signature with note's verifier.
func Example() {
	key, err := tlog.ParseKey("PRIVATE+KEY+hindsight/example+e16d0864+AUlhyFLnyL7UjJnONxil2/CwHLtTIYZld4iivB89XilI")
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tree := tlog.NewTree()
	var leaves [][]byte
	for p := int64(1); p <= 3; p++ {
		e := eventstore.Event{Position: p, StreamID: "cart-1", Version: p, ID: fmt.Sprintf("00000000-0000-7000-8000-00000000000%d", p),
			Type: "ItemAdded", Data: []byte(`{"sku":"a"}`), RecordedAt: at, Hash: "00"}
		leaves = append(leaves, tlog.LeafHash(&e))
		tree.Append(tlog.LeafHash(&e))
	}
	size, root := tree.Root()
	cp, _ := tlog.Sign(key, size, root)
	fmt.Print(strings.Join(strings.SplitAfter(string(cp.Note), "\n")[:2], ""))

	// A client holding the checkpoint checks the note and a proof.
	got, err := tlog.OpenCheckpoint(cp.Note, key.Verifier)
	fmt.Println("signature:", err == nil, "size:", got.Size)
	path, _ := tree.InclusionProof(1, size)
	err = proof.VerifyInclusion(rfc6962.DefaultHasher, 1, size, leaves[1], path, got.Root)
	fmt.Println("position 2 included:", err == nil, "root:", hex.EncodeToString(got.Root)[:16])
	// Output:
	// hindsight/example
	// 3
	// signature: true size: 3
	// position 2 included: true root: d802dc4494e16707
}
