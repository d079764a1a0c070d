package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGraphQLOverHTTPAudit runs the GraphQL-over-HTTP spec's own audit suite
// (the graphql-http npm package's serverAudits, e2e/httpaudit/audit.mjs)
// against the built binary's /graphql: every MUST and every SHOULD must
// pass. The packages come from the committed lockfile (npmCI).
func TestGraphQLOverHTTPAudit(t *testing.T) {
	dir, err := filepath.Abs("httpaudit")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (20 or later) is needed for the GraphQL-over-HTTP audit: %v", err)
	}
	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, data, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(data, "data")})
	waitReady(t, p, base)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "audit.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL="+base+"/graphql", "NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node audit.mjs: %v\n%s", err, out)
	}
	t.Logf("node audit.mjs:\n%s", out)

	// The audit's parse and validation failures were counted by reason.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, reason := range []string{"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "METHOD"} {
		if !strings.Contains(string(metrics), `hindsight_graphql_rejections_total{reason="`+reason+`"}`) {
			t.Errorf("/metrics has no rejection count for %s", reason)
		}
	}
	p.stop(30 * time.Second)
}
