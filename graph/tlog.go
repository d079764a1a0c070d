package graph

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph/model"
	"github.com/hindsight-dev/hindsight/tlog"
)

// The verifiable log's GraphQL side (schema/tlog.graphqls): mapping proofs
// to hex strings, and who may ask for them. A checkpoint and a consistency
// proof say nothing about any event, so any caller may have them; an
// inclusion proof carries the event's leaf hash, which commits to its
// content, so it needs access to the event's stream.

var errNoTlog = &codedError{code: CodeNotFound, msg: "this server keeps no verifiable log"}

// verifiableLog checks that the caller may use the log and returns it.
func (r *Resolver) verifiableLog(ctx context.Context) (*tlog.Log, error) {
	if _, err := principal(ctx); err != nil {
		return nil, err
	}
	if r.TLog == nil {
		return nil, errNoTlog
	}
	return r.TLog, nil
}

// provenEvent returns the event at position, if the caller may see it.
func (r *Resolver) provenEvent(ctx context.Context, position int64) (*eventstore.Event, error) {
	if position < 1 {
		return nil, badInputf("position must be at least 1")
	}
	events, err := r.Store.ReadAll(ctx, eventstore.ReadAllOptions{After: position - 1, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(events) == 0 || events[0].Position != position {
		return nil, &codedError{code: CodeNotFound, msg: "no event at this position"}
	}
	if err := allowStream(ctx, events[0].StreamID); err != nil {
		return nil, err
	}
	return &events[0], nil
}

func proofError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tlog.ErrSize):
		return badInputf("%v", err)
	case errors.Is(err, tlog.ErrNoCheckpoint):
		return &codedError{code: CodeNotFound, msg: "no checkpoint has been signed yet; give treeSize"}
	}
	return err
}

func checkpointOf(lg *tlog.Log) *model.Checkpoint {
	if lg == nil || lg.Latest() == nil {
		return nil
	}
	cp := lg.Latest()
	out := &model.Checkpoint{Origin: cp.Origin, TreeSize: int64(cp.Size), RootHash: hex.EncodeToString(cp.Root), Note: string(cp.Note)}
	if k := lg.Key(); k != nil {
		out.VerifierKey = k.VerifierKey
	}
	return out
}

func hexes(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

func inclusionOf(p *tlog.Inclusion, e *eventstore.Event) *model.InclusionProof {
	if p == nil {
		return nil
	}
	return &model.InclusionProof{Position: p.Position, TreeSize: p.TreeSize, LeafHash: hex.EncodeToString(p.LeafHash),
		LeafData: base64.StdEncoding.EncodeToString(tlog.LeafData(e)), Hashes: hexes(p.Hashes), RootHash: hex.EncodeToString(p.Root)}
}

func consistencyOf(p *tlog.Consistency) *model.ConsistencyProof {
	if p == nil {
		return nil
	}
	return &model.ConsistencyProof{FromSize: p.FromSize, ToSize: p.ToSize, Hashes: hexes(p.Hashes),
		FromRoot: hex.EncodeToString(p.FromRoot), ToRoot: hex.EncodeToString(p.ToRoot)}
}
