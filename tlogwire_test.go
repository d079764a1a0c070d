package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/internal/tamper"
	"github.com/hindsight-dev/hindsight/tlog"
)

func httpGet(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestCheckpointEndpointAndReadyz: GET /checkpoint serves the signed note as
// text, and a log that disagrees with its checkpoints at start keeps the
// server out of ready, with /readyz naming the positions.
func TestCheckpointEndpointAndReadyz(t *testing.T) {
	client, db := storetest.Client(t)
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	key, _, err := tlog.LoadOrGenerateKey(keyFile, "hindsight/readyz-test")
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, db, keyFile)
	if code, _, body := httpGet(t, ts.url+"/checkpoint"); code != http.StatusNotFound {
		t.Fatalf("/checkpoint before any: %d %s", code, body)
	}
	ts.appendN(t, 6)
	code, ctype, body := httpGet(t, ts.url+"/checkpoint")
	cp, err := tlog.OpenCheckpoint([]byte(body), key.Verifier)
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") || err != nil || cp.Size != 6 {
		t.Fatalf("/checkpoint: %d %s %q: %v", code, ctype, body, err)
	}
	if code, _, body := httpGet(t, ts.url+"/checkpoint/verifier-key"); code != http.StatusOK || body != key.VerifierKey+"\n" {
		t.Fatalf("/checkpoint/verifier-key: %d %q", code, body)
	}
	if code, _, body := httpGet(t, ts.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz of an intact log: %d %s", code, body)
	}
	_, _, metrics := httpGet(t, ts.url+"/metrics")
	for _, want := range []string{"hindsight_tlog_tree_size 6\n", "hindsight_tlog_checkpoint_size 6\n", "hindsight_tlog_fault 0\n"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	ts.stop()

	tamper.AlterData(context.Background(), t, client.Database(db), 3, `{"i":42}`)
	ts = startTestServer(t, db, keyFile)
	code, _, body = httpGet(t, ts.url+"/readyz")
	var r struct{ Status, Reason string }
	_ = json.Unmarshal([]byte(body), &r)
	if code != http.StatusServiceUnavailable || r.Reason != "the log disagrees with its signed checkpoints: positions 1 to 6: "+
		"altered, removed, inserted or reordered: the log's root at size 6 differs from the signed checkpoint's" {
		t.Fatalf("/readyz of a tampered log: %d %s", code, body)
	}
	if _, _, metrics := httpGet(t, ts.url+"/metrics"); !strings.Contains(metrics, "hindsight_tlog_fault 1\n") {
		t.Fatal("/metrics does not show the fault")
	}
}
