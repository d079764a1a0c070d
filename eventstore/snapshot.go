package eventstore

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// snapshotDoc is a stored snapshot. Its _id makes saving idempotent.
type snapshotDoc struct {
	ID            string    `bson:"_id"` // snapshotID
	Stream        string    `bson:"stream"`
	Projection    string    `bson:"projection"`
	SchemaVersion int       `bson:"schemaVersion"`
	Version       int64     `bson:"version"`
	Position      int64     `bson:"position"`
	RecordedAt    time.Time `bson:"recordedAt"`
	RecordedAtNs  int64     `bson:"recordedAtNs"`
	State         string    `bson:"state"` // JSON text
}

type snapKey struct {
	stream, projection string
	schema             int
}

// snapshotIndex holds every snapshot in memory, per key sorted by version,
// so loading one never reads the store.
type snapshotIndex struct {
	mu sync.RWMutex
	m  map[snapKey][]Snapshot
}

func newSnapshotIndex() *snapshotIndex { return &snapshotIndex{m: map[snapKey][]Snapshot{}} }

func (x *snapshotIndex) add(sn Snapshot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := snapKey{sn.StreamID, sn.Projection, sn.SchemaVersion}
	list := x.m[k]
	i := sort.Search(len(list), func(i int) bool { return list[i].Version >= sn.Version })
	if i < len(list) && list[i].Version == sn.Version {
		return
	}
	list = append(list, Snapshot{})
	copy(list[i+1:], list[i:])
	list[i] = sn
	x.m[k] = list
}

func (x *snapshotIndex) latest(k snapKey, maxVersion int64) (Snapshot, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	list := x.m[k]
	i := sort.Search(len(list), func(i int) bool { return list[i].Version > maxVersion })
	if i == 0 {
		return Snapshot{}, false
	}
	return list[i-1], true
}

// snapshotID is a snapshot's _id: stream, projection, schema version and
// version, with the two strings prefixed by their length. Joined with "|"
// alone, a stream id or projection holding a "|" (a declarative
// projection's partition key can be anything) could spell another
// snapshot's _id, and saving it was then a no-op, as a duplicate. Snapshots
// saved with the old form keep it; loading reads the fields, not the _id.
func snapshotID(sn Snapshot) string {
	return fmt.Sprintf("%d:%s|%d:%s|%d|%d", len(sn.StreamID), sn.StreamID, len(sn.Projection), sn.Projection, sn.SchemaVersion, sn.Version)
}

// SnapshotDelete selects the snapshots DeleteSnapshots deletes: those of
// SchemaVersion whose projection is Projection or, with Prefix, begins with
// it.
type SnapshotDelete struct {
	Projection    string
	Prefix        bool
	SchemaVersion int
}

func (q SnapshotDelete) matches(projection string, schema int) bool {
	if schema != q.SchemaVersion {
		return false
	}
	if q.Prefix {
		return strings.HasPrefix(projection, q.Projection)
	}
	return projection == q.Projection
}

// DeleteSnapshots deletes the snapshots q selects from the store and from
// this instance's memory, and returns how many the store held. Other
// instances keep theirs in memory until they start again; a snapshot is
// only a shortcut, so one they no longer find costs them a fold.
func (s *Store) DeleteSnapshots(ctx context.Context, q SnapshotDelete) (int64, error) {
	if q.Projection == "" {
		return 0, &Error{Op: "delete snapshots", Err: invalid("deleting snapshots needs a projection")}
	}
	var name any = q.Projection
	if q.Prefix {
		name = bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(q.Projection)}}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	res, err := s.snaps.DeleteMany(ctx, bson.D{{Key: "projection", Value: name}, {Key: "schemaVersion", Value: q.SchemaVersion}})
	if err != nil {
		return 0, &Error{Op: "delete snapshots", Err: classify(err)}
	}
	s.snapI.drop(q)
	return res.DeletedCount, nil
}

func (x *snapshotIndex) drop(q SnapshotDelete) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k := range x.m {
		if q.matches(k.projection, k.schema) {
			delete(x.m, k)
		}
	}
}

// MaxSnapshotBytes bounds the state of a snapshot, so that reading the
// snapshots at start keeps every reply of the store bounded (see reads.go).
// A projection whose state is larger goes without snapshots: it folds from
// the events.
const MaxSnapshotBytes = 4 << 20

// SaveSnapshot stores a snapshot. Saving the same snapshot twice is a no-op.
// A state over MaxSnapshotBytes is ErrInvalidArgument.
func (s *Store) SaveSnapshot(ctx context.Context, sn Snapshot) error {
	if sn.StreamID == "" || sn.Projection == "" || sn.Version < 1 {
		return &Error{Op: "save snapshot", StreamID: sn.StreamID, Err: invalid("snapshot needs a stream, a projection and a version")}
	}
	if len(sn.State) > MaxSnapshotBytes {
		return &Error{Op: "save snapshot", StreamID: sn.StreamID, Err: invalid("snapshot state is %d bytes; the limit is %d", len(sn.State), MaxSnapshotBytes)}
	}
	d := snapshotDoc{
		ID:     snapshotID(sn),
		Stream: sn.StreamID, Projection: sn.Projection, SchemaVersion: sn.SchemaVersion, Version: sn.Version,
		Position: sn.Position, RecordedAt: sn.RecordedAt.Truncate(time.Millisecond), RecordedAtNs: sn.RecordedAt.UnixNano(),
		State: string(sn.State),
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if _, err := s.snaps.InsertOne(ctx, d); err != nil && !mongo.IsDuplicateKeyError(err) {
		return &Error{Op: "save snapshot", StreamID: sn.StreamID, Err: classify(err)}
	}
	s.snapI.add(sn)
	return nil
}

// LoadSnapshot returns the latest snapshot of the projection and schema
// version at or before the point, from memory, or ErrSnapshotNotFound.
func (s *Store) LoadSnapshot(ctx context.Context, q SnapshotQuery) (Snapshot, error) {
	maxV := int64(1<<62 - 1)
	if !q.At.IsNow() {
		v, err := s.ResolveVersion(ctx, q.StreamID, q.At)
		if err != nil {
			return Snapshot{}, err
		}
		maxV = v
	}
	sn, ok := s.snapI.latest(snapKey{q.StreamID, q.Projection, q.SchemaVersion}, maxV)
	if !ok {
		return Snapshot{}, &Error{Op: "load snapshot", StreamID: q.StreamID, Err: ErrSnapshotNotFound}
	}
	return sn, nil
}

func (s *Store) loadSnapshots(ctx context.Context) error {
	// A snapshot holds at most MaxSnapshotBytes of state: the batch size
	// keeps every reply within MaxReplyBytes (see reads.go).
	cur, err := s.snaps.Find(ctx, bson.D{}, options.Find().SetBatchSize(MaxReplyBytes/(MaxSnapshotBytes+64<<10)))
	if err != nil {
		return classify(err)
	}
	defer cur.Close(ctx)
	n := 0
	for cur.Next(ctx) {
		var d snapshotDoc
		if err := cur.Decode(&d); err != nil {
			return err
		}
		s.snapI.add(Snapshot{StreamID: d.Stream, Projection: d.Projection, SchemaVersion: d.SchemaVersion,
			Version: d.Version, Position: d.Position, RecordedAt: time.Unix(0, d.RecordedAtNs).UTC(), State: []byte(d.State)})
		n++
	}
	if n > 0 {
		s.log.Info("snapshots loaded", "count", n)
	}
	return classify(cur.Err())
}
