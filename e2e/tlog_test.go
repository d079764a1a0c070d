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

// TestBrowserProof runs e2e/browser/proof.test.mjs: in Chromium, the
// explorer's event view says "Included in checkpoint N" after checking the
// proof in the page, and says NOT proven when the proof is altered on its way
// (see the script). It installs what it needs, as
// TestBrowserExplorer does (browserSetup).
func TestBrowserProof(t *testing.T) {
	chromium, dir, node, _ := browserSetup(t)
	tmp := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, tmp, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data"), "HINDSIGHT_CHECKPOINT_INTERVAL=50ms"})
	waitReady(t, p, base)
	for i := 0; i < 7; i++ {
		if _, errs := graphql(t, base, `mutation($s: String!) { appendToStream(streamId: $s, events: [{type: "T", data: {k: "v"}, metadata: {m: 1}}]) { lastPosition } }`,
			map[string]any{"s": fmt.Sprintf("proof-%d", i%2)}); errs != nil {
			t.Fatal(errs)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tlogGet(t, base+"/checkpoint"), "\n7\n") {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of 7 events")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "proof.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL="+base, "HINDSIGHT_STREAM=proof-0", "HINDSIGHT_SIZE=7", "CHROMIUM="+chromium)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("node proof.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node proof.test.mjs:\n%s", out)
}

// TestVerifiableLogTwoInstances: two servers share a store (devdb) and a
// signing key; each writes, each follows the other's commits into its own
// tree, both sign checkpoints into the one collection, both serve the same
// root for the same size, and `hindsight verify` checks the log against
// every checkpoint either of them stored.
func TestVerifiableLogTwoInstances(t *testing.T) {
	dir := t.TempDir()
	dbAddr := freeAddr(t)
	db := start(t, dir, nil, "devdb", "--addr", dbAddr, "--data-dir", filepath.Join(dir, "db"))
	uri, err := db.stdout.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	uri = strings.TrimSpace(uri)
	// On MongoDB no key is generated: the instances share one file.
	keyFile := filepath.Join(dir, "signing.key")
	if err := os.WriteFile(keyFile, []byte(testSigningKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HINDSIGHT_MONGODB_URI=" + uri, "HINDSIGHT_DATABASE=e2e", "HINDSIGHT_SIGNING_KEY_FILE=" + keyFile,
		"HINDSIGHT_CHECKPOINT_INTERVAL=50ms"}
	var bases []string
	var procs []*proc
	for i := 0; i < 2; i++ {
		addr := freeAddr(t)
		procs = append(procs, start(t, dir, env, "serve", "--addr", addr))
		bases = append(bases, "http://"+addr)
	}
	for i, p := range procs {
		waitReady(t, p, bases[i])
	}
	for i := 0; i < 20; i++ {
		if _, errs := graphql(t, bases[i%2], appendOne, map[string]any{"s": fmt.Sprintf("two-%d", i%3)}); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	// Both trees reach 20 events and agree on the root there.
	roots := map[string]bool{}
	for _, base := range bases {
		deadline := time.Now().Add(30 * time.Second)
		for {
			data, errs := graphql(t, base, `{ consistencyProof(fromSize: 20, toSize: 20) { toRoot } }`, nil)
			if len(errs) == 0 {
				roots[data["consistencyProof"].(map[string]any)["toRoot"].(string)] = true
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no tree of 20 events: %v", base, errs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(roots) != 1 {
		t.Fatalf("the instances disagree on the root at 20: %v", roots)
	}
	for _, p := range procs {
		p.stop(30 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "verify")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: Merkle tree of 20 events") || strings.Contains(string(out), "covered by no checkpoint") {
		t.Fatalf("hindsight verify: %v\n%s", err, out)
	}
	t.Logf("hindsight verify:\n%s", out)
	db.stop(30 * time.Second)
}

// testSigningKey is a fixed Ed25519 key in note form, for the tests only.
const testSigningKey = "PRIVATE+KEY+hindsight/e2e+03a6a4b9+AUkVr+HdYXRA9iPVCjk53mc8G//XJX5fPqLJv5l0hPox"
