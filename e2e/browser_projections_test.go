package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestBrowserProjections runs e2e/browser/projections.test.mjs with Node:
// headless Chromium opens the explorer's Projections view and checks the
// definitions, the partitions now and at an earlier time with a jq filter,
// and a partition's version slider (see the script). Needs what
// TestBrowserExplorer needs.
func TestBrowserProjections(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install Debian's Chromium first: `apt-get update && apt-get install -y chromium`", chromiumPath, err)
	}
	dir, err := filepath.Abs("browser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("e2e/browser/node_modules is missing (%v): run `npm ci --prefix e2e/browser` from the repository root first", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (20 or later) is needed for the browser test: %v", err)
	}
	tmp := t.TempDir()
	addr := freeAddr(t)
	p := start(t, tmp, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data")})
	waitReady(t, p, "http://"+addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "projections.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL=http://"+addr, "CHROMIUM="+chromiumPath, "NO_COLOR=1")
	if a := os.Getenv("HINDSIGHT_ARTIFACTS"); a != "" {
		cmd.Env = append(cmd.Env, "HINDSIGHT_ARTIFACTS="+a)
	}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node projections.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node projections.test.mjs:\n%s", out)
	p.stop(30 * time.Second)
}
