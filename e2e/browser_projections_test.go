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
// and a partition's version slider (see the script). It installs what it needs,
// as TestBrowserExplorer does (browserSetup).
func TestBrowserProjections(t *testing.T) {
	chromium, dir, node, artifacts := browserSetup(t)
	tmp := t.TempDir()
	addr := freeAddr(t)
	p := start(t, tmp, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data")})
	waitReady(t, p, "http://"+addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "projections.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL=http://"+addr, "CHROMIUM="+chromium, "HINDSIGHT_ARTIFACTS="+artifacts, "NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node projections.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node projections.test.mjs:\n%s", out)
	p.stop(30 * time.Second)
}
