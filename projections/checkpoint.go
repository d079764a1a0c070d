package projections

import (
	"context"
	"time"
)

// ReadModelProjector names the order read model's projector in checkpoints.
const ReadModelProjector = "orders"

// Checkpoint records how far a projector has read the log, and under which
// schema version it built its read model.
type Checkpoint struct {
	Projector     string
	SchemaVersion int
	Position      int64
	Instance      string // the eventstore instance that wrote it, for operators
	UpdatedAt     time.Time
}

// CheckpointStore persists projector checkpoints. It is optional: the read
// model lives in memory and is rebuilt from the log at every start (one
// sequential pass over the memory image, which the architecture allows), so
// the stored checkpoint serves operators (how far did the projector get,
// under which schema) and tells the projector at start whether its schema
// version changed since the last run. Package mongocheckpoint stores
// checkpoints in MongoDB.
type CheckpointStore interface {
	// LoadCheckpoint returns the projector's checkpoint, or an error wrapping
	// ErrNotFound when it has none.
	LoadCheckpoint(ctx context.Context, projector string) (Checkpoint, error)
	// SaveCheckpoint stores the checkpoint, replacing the previous one.
	SaveCheckpoint(ctx context.Context, c Checkpoint) error
}
