package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifiableLog runs the built binary as an operator would: the server
// signs checkpoints with the key it generated in its data directory; the
// explorer's proof module (under Node) checks every event against the
// latest checkpoint; `hindsight witness` follows the checkpoints; after
// SIGTERM the shutdown checkpoint covers every event and `hindsight verify`
// checks the tree against every checkpoint.
func TestVerifiableLog(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (20 or later) is needed: %v", err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data"), "HINDSIGHT_CHECKPOINT_INTERVAL=50ms"}
	p := start(t, dir, env)
	waitReady(t, p, base)
	vkey := strings.TrimSpace(tlogGet(t, base+"/checkpoint/verifier-key"))
	if !strings.Contains(p.stderr.String(), vkey) {
		t.Fatalf("the verifier key %q is not in the log", vkey)
	}
	appendSome := func(n, from int) {
		for i := from; i < from+n; i++ {
			_, errs := graphql(t, base, `mutation($s: String!, $e: [NewEvent!]!) { appendToStream(streamId: $s, events: $e) { lastPosition } }`,
				map[string]any{"s": fmt.Sprintf("v-%d", i%3), "e": []any{map[string]any{"type": "T", "data": map[string]any{"i": i, "n": []any{1, 2.5, "x"}},
					"metadata": map[string]any{"z": i}}}})
			if errs != nil {
				t.Fatal(errs)
			}
		}
	}
	waitCheckpoint := func(size int) {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(tlogGet(t, base+"/checkpoint"), fmt.Sprintf("\n%d\n", size)) {
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size %d: %s", size, tlogGet(t, base+"/checkpoint"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	appendSome(12, 0)
	waitCheckpoint(12)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := exec.CommandContext(ctx, node, "proof.test.mjs")
	js.Dir = "js"
	js.Env = append(os.Environ(), "HINDSIGHT_URL="+base)
	if out, err := js.CombinedOutput(); err != nil || !strings.Contains(string(out), "ok 12") {
		t.Fatalf("node proof.test.mjs: %v\n%s", err, out)
	}

	state := filepath.Join(dir, "witness.checkpoint")
	witness := func() (string, error) {
		cmd := exec.CommandContext(ctx, bin, "witness", "--url", base, "--state", state, "--verifier-key", vkey, "--once")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	if out, err := witness(); err != nil || !strings.Contains(out, "trusting the first checkpoint") {
		t.Fatalf("witness: %v\n%s", err, out)
	}
	appendSome(5, 12)
	waitCheckpoint(17)
	if out, err := witness(); err != nil || !strings.Contains(out, "consistent with the last one witnessed") {
		t.Fatalf("witness: %v\n%s", err, out)
	}
	appendSome(3, 17) // then stop at once: the shutdown checkpoint covers them
	p.stop(30 * time.Second)

	cmd := exec.CommandContext(ctx, bin, "verify")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_DATA_DIR="+filepath.Join(dir, "data"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: 20 events in 3 streams") || !strings.Contains(string(out), "ok: Merkle tree of 20 events") ||
		strings.Contains(string(out), "covered by no checkpoint") {
		t.Fatalf("hindsight verify: %v\n%s", err, out)
	}
}

func tlogGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
