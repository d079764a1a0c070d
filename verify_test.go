package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

// TestVerifyNamesFirstBadPosition runs `hindsight verify` on a log edited
// directly in the database (see tamper.BuildLog for its layout: checkpoints
// after every commit) and checks the first bad position it reports. The
// last cases cover an attacker without the key who recomputes the hash
// chains and deletes the checkpoints after the edit: the stored checkpoints
// then agree, and only a copy kept elsewhere (--checkpoint, a witness's
// state) catches it.
func TestVerifyNamesFirstBadPosition(t *testing.T) {
	coverUp := func(ctx context.Context, t *testing.T, db *mongo.Database) {
		tamper.AlterData(ctx, t, db, 7, `{"r":99}`)
		tamper.Rechain(ctx, t, db, "s1")
		if _, err := db.Collection(tlog.CheckpointsCollection).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 7}}}}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name       string
		tamper     func(ctx context.Context, t *testing.T, db *mongo.Database)
		witnessed  bool   // give the checkpoint of size 16 with --checkpoint
		want       string // "" = ok
		wantDetail string
	}{
		{"intact", func(context.Context, *testing.T, *mongo.Database) {}, true, "", "matches 13 of 13 checkpoints"},
		{"alter data", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.AlterData(ctx, t, db, 7, `{"r":99}`)
		}, false,
			"first bad position 7", "hash mismatch in stream \"s1\" at version 2"},
		{"delete in the middle", func(ctx context.Context, t *testing.T, db *mongo.Database) { tamper.Delete(ctx, t, db, 9) }, false,
			"first bad position 9", "positions 9 to 10 are missing"},
		{"delete a stream's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) { tamper.Delete(ctx, t, db, 13) }, false,
			"first bad position 13", "positions 13 to 13 are missing"},
		{"delete the log's tail", func(ctx context.Context, t *testing.T, db *mongo.Database) { tamper.Delete(ctx, t, db, 16) }, false,
			"first bad position 16", "the log ends at position 15, but a signed checkpoint covers 16 events"},
		{"swap positions across streams", func(ctx context.Context, t *testing.T, db *mongo.Database) { tamper.SwapPositions(ctx, t, db, 13, 14) }, false,
			"first bad position 13", "root at size 13 differs"},
		{"reorder within a commit", func(ctx context.Context, t *testing.T, db *mongo.Database) { tamper.ReorderEvents(ctx, t, db, 11) }, false,
			"first bad position 11", "hash mismatch in stream \"s3\" at version 2"},
		{"change recordedAt", func(ctx context.Context, t *testing.T, db *mongo.Database) {
			tamper.ShiftRecordedAt(ctx, t, db, 5, time.Microsecond)
		}, false, "first bad position 5", "hash mismatch in stream \"s0\""},
		{"cover-up, stored checkpoints only", coverUp, false, "", "matches 5 of 5 checkpoints"},
		{"cover-up, witness's checkpoint", coverUp, true, "first bad position 7", "positions 7 to 16: altered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			client, db := storetest.Client(t)
			key := tamper.Key(t, "hindsight/verify-test")
			tamper.BuildLog(t, ctx, client, db, key)
			cps, _, err := tlog.LoadCheckpoints(ctx, client.Database(db).Collection(tlog.CheckpointsCollection), key.Verifier)
			if err != nil || len(cps) != 12 || cps[11].Size != 16 {
				t.Fatalf("checkpoints: %d, %v", len(cps), err)
			}
			witness := filepath.Join(t.TempDir(), "witness.checkpoint")
			if err := os.WriteFile(witness, cps[11].Note, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.tamper(ctx, t, client.Database(db))

			args := []string{"verify", "--mongodb-uri", storetest.URI(t), "--database", db, "--verifier-key", key.VerifierKey}
			if tc.witnessed {
				args = append(args, "--checkpoint", witness)
			}
			var out, errOut bytes.Buffer
			err = run(ctx, args, func(string) string { return "" }, &out, &errOut)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("verify failed: %v\n%s%s", err, out.String(), errOut.String())
			case tc.want != "" && (err == nil || !strings.Contains(out.String(), "BROKEN: "+tc.want+"\n")):
				t.Fatalf("verify: %v\n%s, want %q", err, out.String(), tc.want)
			}
			if !strings.Contains(out.String(), tc.wantDetail) {
				t.Fatalf("verify said\n%s\nwant %q in it", out.String(), tc.wantDetail)
			}
		})
	}
}

// TestExportRefusesToSignATamperedLog: export signs its trailer only over a
// log that agrees with its stored checkpoints.
func TestExportRefusesToSignATamperedLog(t *testing.T) {
	ctx := context.Background()
	client, db := storetest.Client(t)
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	key, _, err := tlog.LoadOrGenerateKey(keyFile, "hindsight/export-test")
	if err != nil {
		t.Fatal(err)
	}
	tamper.BuildLog(t, ctx, client, db, key)
	tamper.AlterData(ctx, t, client.Database(db), 9, `{"r":7}`)
	tamper.Rechain(ctx, t, client.Database(db), "s2")
	var out bytes.Buffer
	err = run(ctx, []string{"export", "--out", filepath.Join(t.TempDir(), "x.jsonl"), "--mongodb-uri", storetest.URI(t), "--database", db,
		"--signing-key-file", keyFile}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "positions 9 to 10: altered") || !strings.Contains(err.Error(), "refusing to sign it") {
		t.Fatalf("export of a tampered log: %v\n%s", err, out.String())
	}
}
