package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
)

// TestBackupCommandsGiveUp: export, verify and import over a log whose
// memory image cannot be built end with the cause and what to do after a
// bounded number of tries, instead of retrying forever in silence. The
// export writes no file.
func TestBackupCommandsGiveUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mc, db := storetest.Client(t)
	if _, err := mc.Database(db).Collection(eventstore.CommitsCollection).InsertOne(ctx, bson.D{
		{Key: "_id", Value: int64(1)}, {Key: "stream", Value: "b"}, {Key: "version", Value: int64(1)},
		{Key: "lastPosition", Value: int64(1)}, {Key: "events", Value: "broken"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	store := []string{"--mongodb-uri", storetest.URI(t), "--database", db}
	getenv := func(string) string { return "" }
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"export", func() error { return export(ctx, append(store, "--out", out), getenv, io.Discard) }},
		{"verify", func() error { return verify(ctx, store, getenv, io.Discard, io.Discard) }},
		// --allow-unsigned: an empty file has no trailer, and import checks
		// the file before it opens the store.
		{"import", func() error { return importCmd(ctx, append(store, "--in", in, "--allow-unsigned"), getenv, io.Discard) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil || !errors.Is(err, eventstore.ErrDamaged) || !strings.Contains(err.Error(), "failed 3 times") ||
				!strings.Contains(err.Error(), "_id 1") || !strings.Contains(err.Error(), "restore the log from a backup") {
				t.Fatalf("%s = %v; want the cause and what to do after 3 tries", c.name, err)
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("export left %s behind (%v)", out, err)
	}
}
