package tlog

import (
	"errors"
	"fmt"
)

// ErrNoCheckpoint: a proof was asked against the latest checkpoint, and none
// has been signed yet.
var ErrNoCheckpoint = errors.New("tlog: no checkpoint has been signed yet")

// Inclusion is an inclusion proof of one event.
type Inclusion struct {
	Position, TreeSize int64
	LeafHash           []byte
	Hashes             [][]byte
	Root               []byte
}

// Consistency is a consistency proof between two tree sizes.
type Consistency struct {
	FromSize, ToSize int64
	Hashes           [][]byte
	FromRoot, ToRoot []byte
}

// size resolves a requested tree size: 0 means the latest checkpoint's.
func (l *Log) size(treeSize int64) (uint64, error) {
	if treeSize == 0 {
		cp := l.latest.Load()
		if cp == nil {
			return 0, ErrNoCheckpoint
		}
		return cp.Size, nil
	}
	if treeSize < 0 {
		return 0, fmt.Errorf("%w: %d", ErrSize, treeSize)
	}
	return uint64(treeSize), nil
}

// InclusionProof proves that the event at position is in the tree of
// treeSize leaves (0: the latest checkpoint's size).
func (l *Log) InclusionProof(position, treeSize int64) (*Inclusion, error) {
	size, err := l.size(treeSize)
	if err != nil {
		return nil, err
	}
	if position < 1 || uint64(position) > size {
		return nil, fmt.Errorf("%w: position %d is not in a tree of %d events", ErrSize, position, size)
	}
	p, err := l.tree.InclusionProof(uint64(position-1), size)
	if err != nil {
		return nil, err
	}
	leaf, err := l.tree.LeafHash(uint64(position - 1))
	if err != nil {
		return nil, err
	}
	root, err := l.tree.RootAt(size)
	if err != nil {
		return nil, err
	}
	return &Inclusion{Position: position, TreeSize: int64(size), LeafHash: leaf, Hashes: p, Root: root}, nil
}

// ConsistencyProof proves that the tree of fromSize leaves is a prefix of
// the tree of toSize (0: the latest checkpoint's size).
func (l *Log) ConsistencyProof(fromSize, toSize int64) (*Consistency, error) {
	to, err := l.size(toSize)
	if err != nil {
		return nil, err
	}
	if fromSize < 0 || uint64(fromSize) > to {
		return nil, fmt.Errorf("%w: from size %d is not within 0..%d", ErrSize, fromSize, to)
	}
	p, err := l.tree.ConsistencyProof(uint64(fromSize), to)
	if err != nil {
		return nil, err
	}
	r1, err := l.tree.RootAt(uint64(fromSize))
	if err != nil {
		return nil, err
	}
	r2, err := l.tree.RootAt(to)
	if err != nil {
		return nil, err
	}
	return &Consistency{FromSize: fromSize, ToSize: int64(to), Hashes: p, FromRoot: r1, ToRoot: r2}, nil
}
