package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/graph/model"
	"github.com/hindsight-dev/hindsight/projections"
)

// Helpers of the declarative projections' resolvers (projections.resolvers.go).

func partitionConnection(p projections.PartitionPage) *model.ProjectionPartitionConnection {
	c := &model.ProjectionPartitionConnection{
		Edges:      make([]model.ProjectionPartitionEdge, len(p.Partitions)),
		PageInfo:   &model.PageInfo{HasNextPage: p.HasNext},
		TotalCount: p.TotalCount, Position: p.Position, DefinitionVersion: int(p.DefinitionVersion),
	}
	for i := range p.Partitions {
		c.Edges[i] = model.ProjectionPartitionEdge{Cursor: p.Cursors[i], Node: &p.Partitions[i]}
	}
	if p.EndCursor != "" {
		end := p.EndCursor
		c.PageInfo.EndCursor = &end
	}
	return c
}

// allowReserved fails unless the caller may write streamID: the definition
// streams of declarative projections take only admins, so that a writer
// cannot define a projection through appendToStream.
func allowReserved(ctx context.Context, streamID string) error {
	if !strings.HasPrefix(streamID, projections.DefinitionStreamPrefix) {
		return nil
	}
	if err := requireRole(ctx, auth.Admin); err != nil {
		return &codedError{code: CodeForbidden, msg: fmt.Sprintf("the streams %s* hold projection definitions; use defineProjection", projections.DefinitionStreamPrefix)}
	}
	return nil
}

// projectionVisible reports whether the caller may see a projection's
// definitions: when it may read some of its partitions under its latest
// definition (a stream-keyed one whose streams overlap the caller's
// prefixes, a jq-keyed one whose streams the caller may all read).
func projectionVisible(p *auth.Principal, info projections.ProjectionInfo) bool {
	if len(info.Versions) == 0 {
		return false
	}
	def := info.Versions[len(info.Versions)-1].Definition
	if !def.StreamKeyed() {
		return p.AllowsAllWithPrefix(def.StreamPrefix)
	}
	_, ok := p.Narrow(def.StreamPrefix)
	return ok
}

// faultExtensions describes a projection fault in extensions.
func faultExtensions(f projections.Fault) map[string]any {
	return map[string]any{"projection": f.Projection, "definitionVersion": f.DefinitionVersion,
		"kind": string(f.Kind), "position": fmt.Sprint(f.Position), "streamId": f.StreamID,
		"eventType": f.EventType, "eventVersion": f.EventVersion}
}
