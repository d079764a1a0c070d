package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestBrowserExplorer runs e2e/browser/explorer.test.mjs with Node: headless
// Chromium opens the explorer at /explorer/ on an order stepped through its
// lifecycle, drags the timeline slider to version 3 with the keyboard and
// checks the status and total shown, sees a new event arrive live without a
// reload, drops the websocket and checks that the missed events arrive once
// each, checks contrast and labels on every view, and fails on any console
// error. A second server with auth apikey checks that the page asks for a
// token and sends it on fetch and in connection_init. Screenshots go to
// $HINDSIGHT_ARTIFACTS, by default e2e/artifacts/ (git-ignored).
//
// It installs what it needs: the packages of e2e/browser from the committed
// lockfile, and Chromium where it can (needChromium).
func TestBrowserExplorer(t *testing.T) {
	chromium, dir, node, artifacts := browserSetup(t)

	tmp := t.TempDir()
	addr := freeAddr(t)
	open := start(t, tmp, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data")})

	const key = "explorer-e2e-writer-key-0001"
	keys := filepath.Join(tmp, "api-keys")
	if err := os.WriteFile(keys, []byte(key+" writer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	authAddr := freeAddr(t)
	authed := start(t, tmp, []string{"HINDSIGHT_ADDR=" + authAddr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data-auth"),
		"HINDSIGHT_AUTH=apikey", "HINDSIGHT_API_KEYS_FILE=" + keys})
	waitReady(t, open, "http://"+addr)
	waitReady(t, authed, "http://"+authAddr)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "explorer.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HINDSIGHT_URL=http://"+addr,
		"HINDSIGHT_AUTH_URL=http://"+authAddr,
		"HINDSIGHT_AUTH_KEY="+key,
		"HINDSIGHT_ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium,
		"NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node explorer.test.mjs: %v\n%s\n(screenshots in %s)", err, out, artifacts)
	}
	t.Logf("node explorer.test.mjs:\n%s", out)
	t.Logf("screenshots: %s", filepath.Join(artifacts, "explorer-order.png"))
	open.stop(30 * time.Second)
	authed.stop(30 * time.Second)
}

// TestBrowserGraphiQL runs e2e/browser/graphiql.test.mjs: GraphiQL at / in
// headless Chromium with every other host blocked runs a mutation, a query
// and a subscription that receives a live event, with no console error
// (CSP violations included); the explorer link covers none of GraphiQL.
func TestBrowserGraphiQL(t *testing.T) {
	chromium, dir, node, artifacts := browserSetup(t)
	tmp := t.TempDir()
	addr := freeAddr(t)
	p := start(t, tmp, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(tmp, "data")})
	waitReady(t, p, "http://"+addr)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "graphiql.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL=http://"+addr, "HINDSIGHT_ARTIFACTS="+artifacts, "CHROMIUM="+chromium, "NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node graphiql.test.mjs: %v\n%s\n(screenshots in %s)", err, out, artifacts)
	}
	t.Logf("node graphiql.test.mjs:\n%s", out)
	p.stop(30 * time.Second)
}

// browserSetup readies a browser test: Chromium, e2e/browser's packages and
// Node, and the directory for screenshots ($HINDSIGHT_ARTIFACTS, by default
// e2e/artifacts).
func browserSetup(t *testing.T) (chromium, dir, node, artifacts string) {
	t.Helper()
	chromium = needChromium(t)
	dir, err := filepath.Abs("browser")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	if node, err = exec.LookPath("node"); err != nil {
		t.Fatalf("node (20 or later) is needed for the browser tests: %v", err)
	}
	artifacts = os.Getenv("HINDSIGHT_ARTIFACTS")
	if artifacts == "" {
		if artifacts, err = filepath.Abs("artifacts"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return chromium, dir, node, artifacts
}
