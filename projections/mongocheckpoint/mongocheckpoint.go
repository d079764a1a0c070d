// Package mongocheckpoint stores projector checkpoints in MongoDB: one small
// document per projector, {_id: projector, schemaVersion, position,
// instance, updatedAt}, in the collection "projections". Reads and writes go
// by _id, so they stay cheap even on FerretDB, and they happen only at start
// and about once a second, never on a request path.
package mongocheckpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/projections"
)

// Collection is where checkpoints live.
const Collection = "projections"

// Store is a projections.CheckpointStore in a MongoDB database. The database
// and its client stay owned by the caller.
type Store struct {
	coll *mongo.Collection
}

var _ projections.CheckpointStore = (*Store)(nil)

// New returns a checkpoint store in db.
func New(db *mongo.Database) *Store { return &Store{coll: db.Collection(Collection)} }

type doc struct {
	ID            string    `bson:"_id"`
	SchemaVersion int       `bson:"schemaVersion"`
	Position      int64     `bson:"position"`
	Instance      string    `bson:"instance,omitempty"`
	UpdatedAt     time.Time `bson:"updatedAt"`
}

// LoadCheckpoint returns the projector's checkpoint, or an error wrapping
// projections.ErrNotFound.
func (s *Store) LoadCheckpoint(ctx context.Context, projector string) (projections.Checkpoint, error) {
	var d doc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: projector}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return projections.Checkpoint{}, fmt.Errorf("checkpoint of %q: %w", projector, projections.ErrNotFound)
	}
	if err != nil {
		return projections.Checkpoint{}, fmt.Errorf("mongocheckpoint: load %q: %w", projector, err)
	}
	return projections.Checkpoint{Projector: d.ID, SchemaVersion: d.SchemaVersion, Position: d.Position,
		Instance: d.Instance, UpdatedAt: d.UpdatedAt}, nil
}

// SaveCheckpoint replaces the projector's checkpoint.
func (s *Store) SaveCheckpoint(ctx context.Context, c projections.Checkpoint) error {
	d := doc{ID: c.Projector, SchemaVersion: c.SchemaVersion, Position: c.Position, Instance: c.Instance,
		UpdatedAt: c.UpdatedAt.UTC().Truncate(time.Millisecond)}
	_, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.Projector}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("mongocheckpoint: save %q: %w", c.Projector, err)
	}
	return nil
}
