package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// The end of an export is a trailer line that commits to everything before
// it:
//
//	{"trailer":{"events":27,"treeSize":27,"rootHash":"<hex>","checkpoint":"<signed note>"}}
//
// rootHash is the root of the RFC 6962 tree whose leaves are the file's
// events (the same tree the server keeps, see package tlog), and checkpoint
// is a C2SP tlog-checkpoint of that size and root signed with the server's
// key (absent when the exporting server has none). A file cut anywhere, with
// anything added after the trailer, or with any event altered, removed or
// reordered no longer matches its trailer.

// trailer is the last line of an export.
type trailer struct {
	Events     int64  `json:"events"`
	TreeSize   int64  `json:"treeSize"`
	RootHash   string `json:"rootHash"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

type trailerLine struct {
	Trailer *trailer `json:"trailer"`
}

// trailerPrefix starts the trailer line and no event line (those start with
// {"position").
var trailerPrefix = []byte(`{"trailer":`)

// maxLineBytes bounds one line of an export, so that import holds at most
// one line in memory whatever the file holds (a gzip bomb of whitespace
// included): an event is at most 4 MiB of JSON (the append limit), and
// escaping can at most double some of it.
const maxLineBytes = 12 << 20

// lineReader reads the lines of an export, plain or gzip, in bounded memory.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	line int64
	zr   *gzip.Reader
}

func newLineReader(r io.Reader) (*lineReader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	lr := &lineReader{br: br}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		lr.zr = zr
		lr.br = bufio.NewReaderSize(zr, 1<<20)
	}
	return lr, nil
}

func (lr *lineReader) Close() {
	if lr.zr != nil {
		_ = lr.zr.Close()
	}
}

// next returns the next line without its newline, or io.EOF. A line longer
// than maxLineBytes is an error before it is read further.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	lr.line++
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(lr.buf)+len(chunk) > maxLineBytes {
			return nil, fmt.Errorf("line %d of the file is longer than %d bytes: not an export", lr.line, maxLineBytes)
		}
		if need := len(lr.buf) + len(chunk); need > cap(lr.buf) {
			// Double (append grows large slices by a quarter, which
			// allocates about five times the final size on the way).
			grown := make([]byte, len(lr.buf), min(max(2*cap(lr.buf), need), maxLineBytes))
			copy(grown, lr.buf)
			lr.buf = grown
		}
		lr.buf = append(lr.buf, chunk...)
		switch {
		case err == nil:
			return lr.buf[:len(lr.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(lr.buf) > 0:
			return nil, fmt.Errorf("line %d of the file does not end with a newline: the file is cut or padded", lr.line)
		}
		return nil, err
	}
}

// parseEvent decodes an event line.
func parseEvent(line []byte) (eventstore.Event, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var l exportLine
	if err := dec.Decode(&l); err != nil {
		return eventstore.Event{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, l.RecordedAt)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("recordedAt: %w", err)
	}
	var meta json.RawMessage
	if len(l.Metadata) > 0 && string(l.Metadata) != "null" {
		meta = l.Metadata
	}
	return eventstore.Event{ID: l.ID, StreamID: l.StreamID, Version: l.Version, Position: l.Position,
		Type: l.Type, Data: l.Data, Metadata: meta, RecordedAt: at.UTC(), Hash: l.Hash}, nil
}

func parseTrailer(line []byte) (*trailer, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var tl trailerLine
	if err := dec.Decode(&tl); err != nil || tl.Trailer == nil {
		return nil, fmt.Errorf("malformed trailer: %v", err)
	}
	return tl.Trailer, nil
}

// scanExport reads an export and calls each for every event in file order,
// then returns the trailer (nil when the file has none). Anything after the
// trailer is an error.
func scanExport(r io.Reader, each func(line int64, e eventstore.Event) error) (*trailer, error) {
	lr, err := newLineReader(r)
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	var tr *trailer
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return tr, nil
		}
		if err != nil {
			return tr, err
		}
		if tr != nil {
			return tr, fmt.Errorf("line %d of the file follows the trailer: the file is padded", lr.line)
		}
		if bytes.HasPrefix(line, trailerPrefix) {
			if tr, err = parseTrailer(line); err != nil {
				return nil, fmt.Errorf("line %d of the file: %w", lr.line, err)
			}
			continue
		}
		e, err := parseEvent(line)
		if err != nil {
			return tr, fmt.Errorf("line %d of the file: %w", lr.line, err)
		}
		if err := each(lr.line, e); err != nil {
			return tr, err
		}
	}
}

// fileCheck is what checkExport found.
type fileCheck struct {
	events   int64
	root     []byte
	trailer  *trailer
	signed   *tlog.Checkpoint // the trailer's checkpoint, verified; nil when unsigned
	unsigned string           // what --allow-unsigned let through; "" when nothing
}

// checkExport reads a whole export before anything is imported: positions
// consecutive from 1, every hash chain, and the Merkle tree of its events
// against the trailer and the trailer's signed checkpoint. Its memory is the
// tree (about 37 bytes per event) and one line, whatever the file's size.
// Without a trailer, or without a checkpoint that v verifies, it fails
// unless allowUnsigned, and then says what it skipped.
func checkExport(r io.Reader, v note.Verifier, allowUnsigned bool) (*fileCheck, error) {
	tree := tlog.NewTree()
	chain := eventstore.NewChainVerifier()
	var n int64
	tr, err := scanExport(r, func(line int64, e eventstore.Event) error {
		if e.Position != n+1 {
			return fmt.Errorf("line %d of the file: position %d, want %d: events removed, inserted or reordered", line, e.Position, n+1)
		}
		if err := chain.Check(&e); err != nil {
			return fmt.Errorf("line %d of the file: %w", line, err)
		}
		tree.Append(tlog.LeafHash(&e))
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	size, root := tree.Root()
	fc := &fileCheck{events: n, root: root, trailer: tr}
	if tr == nil {
		if !allowUnsigned {
			return nil, errors.New("the file has no trailer, so it may be cut short: refusing it (an export of this version ends with one; --allow-unsigned imports it anyway)")
		}
		fc.unsigned = "the file has NO TRAILER: nothing proves it is complete; it may be cut short"
		return fc, nil
	}
	switch {
	case tr.Events != n || tr.TreeSize != int64(size):
		return nil, fmt.Errorf("the file holds %d events but its trailer says %d: it was cut or altered", n, tr.Events)
	case tr.RootHash != hex.EncodeToString(root):
		return nil, fmt.Errorf("the Merkle root of the file's events is %x but its trailer says %s: it was altered", root, tr.RootHash)
	}
	if tr.Checkpoint == "" || v == nil {
		why := "the trailer has no signed checkpoint"
		if tr.Checkpoint != "" {
			why = "no key to verify the trailer's checkpoint (give --verifier-key)"
		}
		if !allowUnsigned {
			return nil, fmt.Errorf("%s: refusing it (--allow-unsigned imports it anyway)", why)
		}
		fc.unsigned = why + ": the count and root match, but nothing proves who wrote them"
		return fc, nil
	}
	cp, err := tlog.OpenCheckpoint([]byte(tr.Checkpoint), v)
	if err != nil {
		return nil, fmt.Errorf("the trailer's checkpoint: %w", err)
	}
	if cp.Size != size || !bytes.Equal(cp.Root, root) {
		return nil, fmt.Errorf("the trailer's signed checkpoint (size %d, root %x) does not match the file (size %d, root %x)", cp.Size, cp.Root, size, root)
	}
	fc.signed = cp
	return fc, nil
}
