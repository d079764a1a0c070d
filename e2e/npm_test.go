package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// npmCI installs a Node project's packages from its committed lockfile when
// they are missing or older than the lockfile, so that `go test ./...` alone
// sets up what the JavaScript tests need (a fresh machine has Go, Node and
// the npm registry). npm ci records what it installed in
// node_modules/.package-lock.json.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, errLock := os.Stat(filepath.Join(dir, "package-lock.json"))
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err == nil && errLock == nil && !installed.ModTime().Before(lock.ModTime()) {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("%s/node_modules is missing and npm (which comes with Node 20 or later) is not installed: %v", dir, err)
	}
	t.Logf("installing the Node packages of %s from its lockfile (npm ci)", dir)
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
