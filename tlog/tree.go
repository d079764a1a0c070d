package tlog

import (
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Tree is the RFC 6962 Merkle tree of the log, held in memory: leaf i is the
// event at position i+1. It keeps
//
//   - a compact range of the whole tree (transparency-dev/merkle's
//     compact.Range: one hash per set bit of the size), which gives the root
//     at the head after every append at a cost of O(log n);
//   - every leaf hash, 32 bytes per event, and the hashes of the perfect
//     subtrees of height storedFrom and above, about 32/2^storedFrom bytes
//     per event more. The levels in between are recomputed from at most
//     2^(storedFrom-1) leaves when a proof needs them. With storedFrom = 4
//     that is about 36 bytes per event instead of 64 for every level, and a
//     proof still costs well under a millisecond.
//
// Proofs and roots at any earlier size come from these hashes, through
// transparency-dev/merkle's proof package. A Tree is safe for concurrent
// use; Append must be called in position order, by one goroutine at a time.
type Tree struct {
	mu     sync.RWMutex
	rng    *compact.Range
	levels []hashList // levels[k]: the perfect subtrees of height k, left to right; 1..storedFrom-1 stay empty
}

// storedFrom is the lowest level above the leaves whose node hashes are kept.
const storedFrom = 4

var (
	hasher  = rfc6962.DefaultHasher
	factory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// ErrSize: a proof or root was asked for a tree size the tree does not have.
var ErrSize = errors.New("tlog: tree size out of range")

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{rng: factory.NewEmptyRange(0)} }

// Append adds leaf hashes (each 32 bytes) at the end of the tree.
func (t *Tree) Append(leafHashes ...[]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range leafHashes {
		// The range only fails for hashes it did not make itself; ours
		// come from the hasher.
		_ = t.rng.Append(h, t.keep)
	}
}

// keep stores the nodes that proofs read: the leaves and the levels from
// storedFrom up. The compact range reports each node once, when it becomes
// complete, in left-to-right order per level.
func (t *Tree) keep(id compact.NodeID, hash []byte) {
	if id.Level != 0 && id.Level < storedFrom {
		return
	}
	for uint(len(t.levels)) <= id.Level {
		t.levels = append(t.levels, hashList{})
	}
	t.levels[id.Level].append(hash)
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rng.End()
}

// Root returns the size and the root hash of the whole tree. The root of the
// empty tree is SHA-256 of the empty string, as RFC 6962 defines it.
func (t *Tree) Root() (uint64, []byte) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	root, _ := t.rng.GetRootHash(nil)
	if root == nil {
		root = hasher.EmptyRoot()
	}
	return t.rng.End(), root
}

// RootAt returns the root hash of the tree when it had size leaves.
func (t *Tree) RootAt(size uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size > t.rng.End() {
		return nil, fmt.Errorf("%w: root at %d of a tree of %d", ErrSize, size, t.rng.End())
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	r, err := factory.NewRange(0, size, t.nodes(ids))
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// LeafHash returns the hash of leaf index (position index+1).
func (t *Tree) LeafHash(index uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if index >= t.rng.End() {
		return nil, fmt.Errorf("%w: leaf %d of a tree of %d", ErrSize, index, t.rng.End())
	}
	return clone(t.levels[0].at(index)), nil
}

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the
// tree of the given size.
func (t *Tree) InclusionProof(index, size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if index >= size || size > t.rng.End() {
		return nil, fmt.Errorf("%w: inclusion of leaf %d in size %d, tree has %d", ErrSize, index, size, t.rng.End())
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return n.Rehash(t.nodes(n.IDs), hasher.HashChildren)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of size1 and size2 leaves.
func (t *Tree) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if size1 > size2 || size2 > t.rng.End() {
		return nil, fmt.Errorf("%w: consistency of %d with %d, tree has %d", ErrSize, size1, size2, t.rng.End())
	}
	n, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return n.Rehash(t.nodes(n.IDs), hasher.HashChildren)
}

// nodes returns the hashes of perfect subtrees within the tree, copied.
// Callers hold mu.
func (t *Tree) nodes(ids []compact.NodeID) [][]byte {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		out[i] = t.node(id)
	}
	return out
}

func (t *Tree) node(id compact.NodeID) []byte {
	if id.Level == 0 || id.Level >= storedFrom {
		return clone(t.levels[id.Level].at(id.Index))
	}
	// A level that is not kept: rebuild the subtree from its leaves.
	begin, end := id.Coverage()
	r := factory.NewEmptyRange(begin)
	for i := begin; i < end; i++ {
		_ = r.Append(t.levels[0].at(i), nil)
	}
	return r.Hashes()[0]
}

// Bytes is the memory the tree's hashes take (the capacity of their chunks).
func (t *Tree) Bytes() int64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var n int64
	for _, l := range t.levels {
		n += l.bytes()
	}
	return n + int64(len(t.rng.Hashes()))*(hashSize+24)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
