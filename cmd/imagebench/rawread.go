package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// rawRead is the baseline of start-up: the official driver reading every
// document of the log.
type rawRead struct {
	took    time.Duration
	commits int64
	events  int64
	bytes   int64 // BSON bytes read
}

// readRaw connects a fresh client to uri and reads every document of the
// commits collection of database hindsight with the query the server uses
// to build its image (_id > 0, sorted by _id), decoding each into bson.Raw
// and counting its events. The time includes connecting. Like the server,
// it knows nothing of the commits' sizes, so it bounds each reply by
// assuming every commit may be at the append limit (eventstore.MaxReplyBytes
// / eventstore.MaxCommitBytes commits per reply): FerretDB does not cap a
// reply at 16 MiB, and 1,000 large commits pass the driver's 48 MB limit.
func readRaw(ctx context.Context, uri string) (rawRead, error) {
	var r rawRead
	start := time.Now()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("imagebench"))
	if err != nil {
		return r, err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	coll := client.Database("hindsight").Collection("commits")
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: int64(0)}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(eventstore.MaxReplyBytes/eventstore.MaxCommitBytes))
	if err != nil {
		return r, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var doc bson.Raw
		if err := cur.Decode(&doc); err != nil {
			return r, err
		}
		arr, ok := doc.Lookup("events").ArrayOK()
		if !ok {
			return r, fmt.Errorf("commit %s has no events array", doc.Lookup("_id"))
		}
		vals, err := arr.Values()
		if err != nil {
			return r, err
		}
		r.commits++
		r.events += int64(len(vals))
		r.bytes += int64(len(doc))
	}
	if err := cur.Err(); err != nil {
		return r, err
	}
	r.took = time.Since(start)
	return r, nil
}

// exportSize runs `hindsight export` of the store at uri into file and
// returns the file's size and how long the export took. The export is JSON
// Lines, one event per line with every stored field (position, streamId,
// version, id, type, data, metadata, recordedAt, hash).
func exportSize(ctx context.Context, bin, uri, file, logPath string) (int64, time.Duration, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "export", "--mongodb-uri", uri, "--out", file)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HINDSIGHT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil {
		return 0, 0, fmt.Errorf("hindsight export: %w: %s", err, out)
	}
	took := time.Since(start)
	st, err := os.Stat(file)
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), took, nil
}

// roundTrip is export → import → export of the large phase's log.
type roundTrip struct {
	importTook, exportTook time.Duration
	identical              bool
	bytes                  int64
}

// runRoundTrip imports the export at first into database hindsight_roundtrip
// of the same store and exports that, with the commands' progress on
// stderr, and compares the two files byte for byte.
func runRoundTrip(ctx context.Context, bin, uri, tmp, first string, stderr io.Writer) (*roundTrip, error) {
	rt := &roundTrip{}
	runCmd := func(args ...string) (time.Duration, error) {
		start := time.Now()
		cmd := exec.CommandContext(ctx, bin, args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "HINDSIGHT_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("hindsight %s: %w", args[0], err)
		}
		return time.Since(start), nil
	}
	var err error
	if rt.importTook, err = runCmd("import", "--mongodb-uri", uri, "--database", "hindsight_roundtrip", "--in", first); err != nil {
		return nil, err
	}
	second := filepath.Join(tmp, "export-roundtrip.jsonl")
	if rt.exportTook, err = runCmd("export", "--mongodb-uri", uri, "--database", "hindsight_roundtrip", "--out", second); err != nil {
		return nil, err
	}
	a, err := fileDigest(first)
	if err != nil {
		return nil, err
	}
	b, err := fileDigest(second)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(second)
	if err != nil {
		return nil, err
	}
	rt.identical, rt.bytes = a == b, st.Size()
	return rt, nil
}

func fileDigest(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
