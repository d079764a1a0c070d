package tlog

import (
	"fmt"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a signed statement of the log's size and root hash, a signed
// note in the C2SP tlog-checkpoint format:
//
//	<origin>
//	<tree size, decimal>
//	<root hash, base64>
//
//	— <key name> <base64 signature>
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Note   []byte // the signed note, as served and stored
}

// Sign makes the checkpoint of a tree of size leaves with root.
func Sign(k *Key, size uint64, root []byte) (*Checkpoint, error) {
	body := log.Checkpoint{Origin: k.Origin(), Size: size, Hash: root}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return &Checkpoint{Origin: k.Origin(), Size: size, Root: root, Note: signed}, nil
}

// OpenCheckpoint checks a checkpoint's signature with the verifier key and
// parses it. The origin must be the key's name.
func OpenCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Note: signed}, nil
}
