package tlog

// hashSize is the size of a SHA-256 hash.
const hashSize = 32

// chunkBytes is the size of one chunk of a hashList: 4096 hashes. Fixed-size
// chunks instead of one growing slice keep the memory at 32 bytes per hash
// (an appended slice carries up to 2× spare capacity and copies on growth).
const chunkBytes = 4096 * hashSize

// hashList holds 32-byte hashes back to back, in chunks.
type hashList struct {
	chunks [][]byte
	n      uint64
}

func (l *hashList) append(h []byte) {
	last := len(l.chunks) - 1
	if last < 0 || len(l.chunks[last]) == chunkBytes {
		// Upper levels hold few hashes: start small and grow to a chunk.
		l.chunks = append(l.chunks, make([]byte, 0, 16*hashSize))
		last++
	}
	c := l.chunks[last]
	if len(c) == cap(c) {
		grown := make([]byte, len(c), min(2*cap(c), chunkBytes))
		copy(grown, c)
		c = grown
	}
	l.chunks[last] = append(c, h...)
	l.n++
}

// at returns the i-th hash, aliasing the list's memory.
func (l *hashList) at(i uint64) []byte {
	off := i * hashSize
	c := l.chunks[off/chunkBytes]
	o := off % chunkBytes
	return c[o : o+hashSize : o+hashSize]
}

func (l *hashList) bytes() int64 {
	var n int64
	for _, c := range l.chunks {
		n += int64(cap(c))
	}
	return n + int64(cap(l.chunks))*24
}
