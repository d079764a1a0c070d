package graph_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/graph"
)

// TestPersistedQueries follows Apollo's persisted-query link: the hash
// alone misses (PersistedQueryNotFound), the query with its hash runs and is
// stored, then the hash alone runs, over POST and GET. A hash that does not
// match its query is the client's mistake, and a hash-only request meets the
// same limits as a full one.
func TestPersistedQueries(t *testing.T) {
	h := newHarness(t)
	q := `{ headPosition }`
	sum := sha256.Sum256([]byte(q))
	hash := hex.EncodeToString(sum[:])
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}

	r := h.postRaw(mustJSON(map[string]any{"extensions": ext}))
	if r.status != http.StatusOK || len(r.errs) != 1 || r.errs[0].Message != "PersistedQueryNotFound" ||
		r.errs[0].code() != "PERSISTED_QUERY_NOT_FOUND" || r.hasData {
		t.Fatalf("hash miss: status %d, body %s", r.status, r.body)
	}
	r = h.postRaw(mustJSON(map[string]any{"query": q, "extensions": ext}))
	if len(r.errs) > 0 || !strings.Contains(string(r.data), "headPosition") {
		t.Fatalf("query with hash: %s", r.body)
	}
	r = h.postRaw(mustJSON(map[string]any{"extensions": ext}))
	if len(r.errs) > 0 || !strings.Contains(string(r.data), "headPosition") {
		t.Fatalf("hash hit: %s", r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/graphql?extensions="+url.QueryEscape(mustJSON(ext)), nil)
	if r := h.raw(req); len(r.errs) > 0 || !strings.Contains(string(r.data), "headPosition") {
		t.Fatalf("hash hit over GET: %s", r.body)
	}

	r = h.postRaw(mustJSON(map[string]any{"query": `{ __typename }`, "extensions": ext}))
	if len(r.errs) != 1 || r.errs[0].code() != graph.CodeBadUserInput {
		t.Fatalf("mismatched hash: %s", r.body)
	}

	big := "{ " + strings.Repeat("__typename ", 400) + "}"
	sum = sha256.Sum256([]byte(big))
	bigExt := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	r = h.postRaw(mustJSON(map[string]any{"query": big, "extensions": bigExt}))
	if len(r.errs) != 1 || r.errs[0].Extensions["reason"] != graph.ReasonMaxFields {
		t.Fatalf("over the field limit with a hash: %s", r.body)
	}
	// Stored (it is short), but a hash-only request is held to the limits too.
	r = h.postRaw(mustJSON(map[string]any{"extensions": bigExt}))
	if len(r.errs) != 1 || r.errs[0].Extensions["reason"] != graph.ReasonMaxFields {
		t.Fatalf("over the field limit by hash: %s", r.body)
	}
}
