package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestJSClients runs e2e/js/subscribe.test.mjs with Node against the built
// binary: the graphql-ws npm package (graphql-transport-ws),
// subscriptions-transport-ws (legacy graphql-ws) and graphql-sse (both its
// distinct connections and its single connection mode) each subscribe to
// events(afterPosition: "0") while 8 concurrent writers append 500 events,
// and must receive all of them in strictly increasing, gap-free position
// order, without duplicates. The packages come from the committed lockfile:
// `npm ci --prefix e2e/js` must have run first.
func TestJSClients(t *testing.T) {
	jsDir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, jsDir)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (20 or later) is needed for the JavaScript client tests: %v", err)
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, dir, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(dir, "data")})
	waitReady(t, p, base)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "subscribe.test.mjs")
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL="+base, "NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node subscribe.test.mjs: %v\n%s", err, out)
	}
	t.Logf("node subscribe.test.mjs:\n%s", out)
	p.stop(30 * time.Second)
}
