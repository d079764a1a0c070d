package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVersionNamesTheRevision: --version and version print the version;
// built in a git clone, the binary names the clone's revision. (GOFLAGS may
// say -buildvcs=false, so this test builds its own binary with stamping on;
// go build cannot stamp in a git worktree, whose .git is a file.)
func TestVersionNamesTheRevision(t *testing.T) {
	exe, rev := bin, ""
	if fi, err := os.Stat("../.git"); err == nil && fi.IsDir() {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse HEAD: %v", err)
		}
		rev = strings.TrimSpace(string(out))[:12]
		exe = filepath.Join(t.TempDir(), "hindsight")
		if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", exe, "..").CombinedOutput(); err != nil {
			t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
		}
	} else {
		t.Log("not a git clone: checking the version without a revision")
	}
	for _, arg := range []string{"--version", "version"} {
		out, err := exec.Command(exe, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(string(out), "hindsight ") || !strings.Contains(string(out), " go1.") ||
			(rev != "" && !strings.Contains(string(out), "("+rev)) {
			t.Errorf("%s printed %q, want hindsight VERSION (%s…) GOVERSION", arg, out, rev)
		}
	}
}

// TestReadyzHeadPosition: /readyz gives headPosition as a string of
// digits, as GraphQL gives positions.
func TestReadyzHeadPosition(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, dir, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data")})
	waitReady(t, p, base)
	for i := 0; i < 3; i++ {
		if _, errs := graphql(t, base, appendOne, map[string]any{"s": "readyz-1"}); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body["status"] != "ready" || body["headPosition"] != "3" {
		t.Errorf("/readyz: %d %v, want headPosition \"3\"", resp.StatusCode, body)
	}
	p.stop(30 * time.Second)
}
