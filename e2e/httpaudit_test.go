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
// pass.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	p, base := runHTTPClientScript(t, "audit.mjs")

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

// TestApolloPersistedQueries runs e2e/httpaudit/apq.mjs: Apollo Client's own
// PersistedQueryLink against the built binary gets PersistedQueryNotFound for
// a hash it has not seen, sends the full query, and a later client's request
// of the same query is answered from its hash alone.
func TestApolloPersistedQueries(t *testing.T) {
	p, _ := runHTTPClientScript(t, "apq.mjs")
	p.stop(30 * time.Second)
}

// runHTTPClientScript starts the binary and runs one Node script of
// e2e/httpaudit against its /graphql (HINDSIGHT_URL), installing the
// packages from the committed lockfile first (npmCI). It fails the test if
// the script fails, and returns the running server and its base URL.
func runHTTPClientScript(t *testing.T, script string) (*proc, string) {
	t.Helper()
	dir, err := filepath.Abs("httpaudit")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (20 or later) is needed for %s: %v", script, err)
	}
	data := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, data, []string{"HINDSIGHT_ADDR=" + addr, "HINDSIGHT_DATA_DIR=" + filepath.Join(data, "data")})
	waitReady(t, p, base)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HINDSIGHT_URL="+base+"/graphql", "NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	t.Logf("node %s:\n%s", script, out)
	return p, base
}
