package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// npmCI installs a Node project's packages from its committed lockfile when
// they are missing, so that `go test ./...` alone sets up what the
// JavaScript tests need (a fresh machine has Go, Node and the npm registry).
func npmCI(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s/node_modules is missing and npm is not installed: %v", dir, err)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
