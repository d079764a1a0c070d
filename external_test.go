package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// TestExportVerifiesWithoutHindsight checks an export, its signed checkpoint
// and an inclusion proof with tlog/testdata/verify_export.py, which uses
// only Python's hashlib and the cryptography package and follows the
// documented formats: the evidence that anyone can check the log without
// our code. Skipped where python3 with cryptography is not installed.
func TestExportVerifiesWithoutHindsight(t *testing.T) {
	if err := exec.Command("python3", "-c", "import cryptography").Run(); err != nil {
		t.Skip("python3 with the cryptography package is not installed")
	}
	ctx := context.Background()
	src := openTestStore(t)
	for i := 0; i < 37; i++ {
		e := eventstore.NewEvent{Type: "Added", Data: json.RawMessage(fmt.Sprintf(`{"i":%d,"html":"<b>&</b>","u":"\u2028é","n":[1,2.50,1e3]}`, i))}
		if i%4 == 0 {
			e.Metadata = json.RawMessage(`{"by":"ops","z":{"b":1,"a":2}}`)
		}
		if _, err := src.Append(ctx, fmt.Sprintf("x-%d", i%5), eventstore.Any{}, e); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	file := exportBytes(t, src, false)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An inclusion proof of position 11 in the tree of 37, as the API
	// serves it, from a tree built by our code.
	tree := tlog.NewTree()
	if _, err := scanExport(bytes.NewReader(file), func(_ int64, e eventstore.Event) error {
		tree.Append(tlog.LeafHash(&e))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path, err := tree.InclusionProof(10, 37)
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := json.Marshal(map[string]any{"position": "11", "treeSize": "37", "hashes": hexes(path)})
	script := filepath.Join("tlog", "testdata", "verify_export.py")
	run := func(export string) (string, error) {
		out, err := exec.Command("python3", script, export, testSigner.VerifierKey, write("proof.json", proof)).CombinedOutput()
		return string(out), err
	}
	out, err := run(write("export.jsonl", file))
	if err != nil || !strings.Contains(out, "inclusion proof: position 11 is in the tree of 37 events\nOK") {
		t.Fatalf("verify_export.py: %v\n%s", err, out)
	}
	altered := bytes.Replace(file, []byte(`"i":7,`), []byte(`"i":8,`), 1)
	if out, err := run(write("altered.jsonl", altered)); err == nil {
		t.Fatalf("verify_export.py accepted an altered export:\n%s", out)
	}
}

func hexes(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}
