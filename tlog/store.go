package tlog

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/mod/sumdb/note"
)

// checkpointDoc is one stored checkpoint. _id is the tree size, so the
// collection holds at most one checkpoint per size (several instances may
// sign the same size; the first one stored stays).
type checkpointDoc struct {
	Size     int64     `bson:"_id"`
	Root     string    `bson:"root"` // hex, for people and tools
	Note     string    `bson:"note"` // the signed note
	SignedAt time.Time `bson:"signedAt"`
}

// SaveCheckpoint stores a checkpoint in the checkpoints collection c, unless
// one of its size is there already. Only checkpoints signed by the key the
// server verifies with belong there (a restored backup's, for one).
func SaveCheckpoint(ctx context.Context, c *mongo.Collection, cp *Checkpoint) error {
	_, err := c.InsertOne(ctx, checkpointDoc{Size: int64(cp.Size), Root: hex.EncodeToString(cp.Root), Note: string(cp.Note),
		SignedAt: time.Now().UTC()})
	if mongo.IsDuplicateKeyError(err) {
		return nil // signed by another instance; Check compares them
	}
	return err
}

// CheckResult is what Check found.
type CheckResult struct {
	Checked int         // checkpoints compared with the tree
	Latest  *Checkpoint // the largest valid checkpoint, nil if none
	Fault   *Fault      // the first disagreement in position order, nil if none
}

// Check compares the tree with every stored checkpoint, smallest first, and
// reports the first one it disagrees with, naming the positions: those the
// log lost (the checkpoint is larger than the tree), or those between the
// last checkpoint that matches and the first that does not. A checkpoint
// whose signature does not verify with v is a fault as well; with a nil
// verifier signatures are not checked (the roots still are).
func Check(ctx context.Context, c *mongo.Collection, t *Tree, v note.Verifier) (CheckResult, error) {
	cps, fault, err := LoadCheckpoints(ctx, c, v)
	if err != nil || fault != nil {
		return CheckResult{Fault: fault}, err
	}
	var res CheckResult
	res.Checked, res.Fault = CheckAgainst(t, cps)
	if len(cps) > 0 {
		res.Latest = cps[len(cps)-1]
	}
	return res, nil
}

// LoadCheckpoints reads every stored checkpoint, smallest first, checking
// each signature with v (nil: not checked). A checkpoint that does not
// verify is returned as a fault.
func LoadCheckpoints(ctx context.Context, c *mongo.Collection, v note.Verifier) ([]*Checkpoint, *Fault, error) {
	cur, err := c.Find(ctx, bson.D{})
	if err != nil {
		return nil, nil, err
	}
	var docs []checkpointDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, nil, err
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Size < docs[j].Size })
	cps := make([]*Checkpoint, 0, len(docs))
	for _, d := range docs {
		cp, err := parseStored(d, v)
		if err != nil {
			return cps, &Fault{From: d.Size, To: d.Size, Reason: fmt.Sprintf("the checkpoint stored for tree size %d is not valid: %v", d.Size, err)}, nil
		}
		cps = append(cps, cp)
	}
	return cps, nil, nil
}

func parseStored(d checkpointDoc, v note.Verifier) (*Checkpoint, error) {
	if v != nil {
		cp, err := OpenCheckpoint([]byte(d.Note), v)
		if err != nil {
			return nil, err
		}
		if cp.Size != uint64(d.Size) {
			return nil, fmt.Errorf("it says size %d", cp.Size)
		}
		return cp, nil
	}
	root, err := hex.DecodeString(d.Root)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Size: uint64(d.Size), Root: root, Note: []byte(d.Note)}, nil
}

// CheckAgainst compares the tree with checkpoints in ascending size order and
// returns how many it checked and the first disagreement.
func CheckAgainst(t *Tree, cps []*Checkpoint) (int, *Fault) {
	size := t.Size()
	var good uint64 // largest size known to match
	for i, cp := range cps {
		if cp.Size > size {
			return i, &Fault{From: int64(size) + 1, To: int64(cp.Size),
				Reason: fmt.Sprintf("missing: the log ends at position %d, but a signed checkpoint covers %d events", size, cp.Size)}
		}
		root, err := t.RootAt(cp.Size)
		if err != nil {
			return i, &Fault{From: int64(good) + 1, To: int64(cp.Size), Reason: err.Error()}
		}
		if !bytes.Equal(root, cp.Root) {
			return i + 1, &Fault{From: int64(good) + 1, To: int64(cp.Size),
				Reason: fmt.Sprintf("altered, removed, inserted or reordered: the log's root at size %d differs from the signed checkpoint's", cp.Size)}
		}
		good = cp.Size
	}
	return len(cps), nil
}
