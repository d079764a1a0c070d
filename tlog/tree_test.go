package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
)

func leaf(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return hasher.HashLeaf(b[:])
}

// refRoot is the RFC 6962 root by the definition (MTH of section 2.1),
// recursively, independent of the compact range and of the stored levels.
func refRoot(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return hasher.HashChildren(refRoot(leaves[:k]), refRoot(leaves[k:]))
}

// TestProofsEverySize checks, for every tree size 1..300, the root against
// RFC 6962's definition, every inclusion proof and every consistency proof
// with transparency-dev/merkle's verifier.
func TestProofsEverySize(t *testing.T) {
	const n = 300
	tr := NewTree()
	var leaves [][]byte
	roots := [][]byte{hasher.EmptyRoot()}
	for i := uint64(0); i < n; i++ {
		leaves = append(leaves, leaf(i))
		tr.Append(leaf(i))
		size, root := tr.Root()
		if size != i+1 || !bytes.Equal(root, refRoot(leaves)) {
			t.Fatalf("size %d: root %x, want %x", size, root, refRoot(leaves))
		}
		roots = append(roots, root)
	}
	for size := uint64(1); size <= n; size++ {
		if got, err := tr.RootAt(size); err != nil || !bytes.Equal(got, roots[size]) {
			t.Fatalf("RootAt(%d) = %x, %v; want %x", size, got, err, roots[size])
		}
		for i := uint64(0); i < size; i++ {
			p, err := tr.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(hasher, i, size, leaves[i], p, roots[size]); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
		}
		for s1 := uint64(0); s1 <= size; s1++ {
			p, err := tr.ConsistencyProof(s1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(hasher, s1, size, p, roots[s1], roots[size]); err != nil {
				t.Fatalf("consistency %d..%d: %v", s1, size, err)
			}
		}
	}
	// A proof that must fail: a wrong leaf, a wrong old root.
	p, _ := tr.InclusionProof(7, 100)
	if proof.VerifyInclusion(hasher, 7, 100, leaf(8), p, roots[100]) == nil {
		t.Fatal("inclusion proof verified a different leaf")
	}
	c, _ := tr.ConsistencyProof(50, 100)
	if proof.VerifyConsistency(hasher, 50, 100, c, roots[51], roots[100]) == nil {
		t.Fatal("consistency proof verified a different old root")
	}
}

func TestOutOfRange(t *testing.T) {
	tr := NewTree()
	tr.Append(leaf(0), leaf(1))
	for name, f := range map[string]func() error{
		"root":        func() error { _, err := tr.RootAt(3); return err },
		"inclusion":   func() error { _, err := tr.InclusionProof(2, 2); return err },
		"beyond":      func() error { _, err := tr.InclusionProof(0, 3); return err },
		"consistency": func() error { _, err := tr.ConsistencyProof(2, 3); return err },
		"reversed":    func() error { _, err := tr.ConsistencyProof(2, 1); return err },
		"leaf":        func() error { _, err := tr.LeafHash(2); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestMemoryPerEvent measures the tree's memory at 200,000 events against the
// target of at most 70 bytes per event.
func TestMemoryPerEvent(t *testing.T) {
	n := uint64(200_000)
	if testing.Short() {
		n = 20_000
	}
	tr := NewTree()
	for i := uint64(0); i < n; i++ {
		tr.Append(leaf(i))
	}
	per := float64(tr.Bytes()) / float64(n)
	t.Logf("tree memory: %d bytes for %d events, %.1f bytes per event", tr.Bytes(), n, per)
	if per > 70 {
		t.Fatalf("%.1f bytes per event, want at most 70", per)
	}
}

// BenchmarkProofs measures proofs at 200,000 events (target: p50 ≤ 1 ms).
func BenchmarkProofs(b *testing.B) {
	const n = 200_000
	tr := NewTree()
	for i := uint64(0); i < n; i++ {
		tr.Append(leaf(i))
	}
	for _, bc := range []struct {
		name string
		f    func(i uint64) error
	}{
		{"inclusion", func(i uint64) error { _, err := tr.InclusionProof(i%n, n); return err }},
		{"consistency", func(i uint64) error { _, err := tr.ConsistencyProof(1+i%(n-1), n); return err }},
		{"rootAt", func(i uint64) error { _, err := tr.RootAt(1 + i%n); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := bc.f(uint64(i) * 7919); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ExampleTree() {
	tr := NewTree()
	for i := uint64(0); i < 5; i++ {
		tr.Append(leaf(i))
	}
	size, root := tr.Root()
	p, _ := tr.InclusionProof(2, size)
	fmt.Println(size, len(p), proof.VerifyInclusion(hasher, 2, size, leaf(2), p, root) == nil)
	// Output: 5 3 true
}

// TestConcurrentReads: proofs and roots are read while the tree grows (run
// with -race); every proof read verifies against the root of its size.
func TestConcurrentReads(t *testing.T) {
	tr := NewTree()
	tr.Append(leaf(0))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				size := tr.Size()
				idx := i % size
				p, err := tr.InclusionProof(idx, size)
				if err != nil {
					t.Error(err)
					return
				}
				root, err := tr.RootAt(size)
				if err != nil {
					t.Error(err)
					return
				}
				if err := proof.VerifyInclusion(hasher, idx, size, leaf(idx), p, root); err != nil {
					t.Errorf("inclusion of %d in %d: %v", idx, size, err)
					return
				}
			}
		}()
	}
	for i := uint64(1); i < 3000; i++ {
		tr.Append(leaf(i))
	}
	close(done)
	wg.Wait()
}
