package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeProjectionsAgainstTheBinary runs the README's "Declarative
// projections" commands exactly as written (curl through sh, with only the
// address changed) against the built binary on a fresh data directory, and
// checks each answer against the one the README shows. Then it restarts the
// server: definitions are events, so the projections are rebuilt from the
// log and the queries answer the same.
func TestReadmeProjectionsAgainstTheBinary(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start0 := strings.Index(section, "\n## Declarative projections\n")
	if start0 < 0 {
		t.Fatal("the README has no section Declarative projections")
	}
	section = section[start0+1:]
	section = section[:strings.Index(section, "\n## ")]
	// Each example: a command starting with curl up to a line "# <answer>".
	examples := regexp.MustCompile(`(?s)\n(curl .*?)\n# (\{.*?\})\n`).FindAllStringSubmatch(section, -1)
	if len(examples) != 8 {
		t.Fatalf("found %d commands with answers, want 8", len(examples))
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	p := start(t, dir, []string{"HINDSIGHT_ADDR=" + addr})
	waitReady(t, p, base)
	run := func(i int, cmdline, want string) {
		t.Helper()
		cmdline = strings.ReplaceAll(cmdline, "http://127.0.0.1:8080", base)
		out, err := exec.Command("sh", "-c", cmdline).Output()
		if err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		var got, wantv any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("example %d answered %q: %v", i+1, out, err)
		}
		_ = json.Unmarshal([]byte(want), &wantv)
		if !reflect.DeepEqual(got, wantv) {
			t.Fatalf("example %d:\n%s\n got %s\nwant %s", i+1, cmdline, out, want)
		}
	}
	for i, ex := range examples {
		run(i, ex[1], ex[2])
	}
	p.stop(30 * time.Second)
	p = start(t, dir, []string{"HINDSIGHT_ADDR=" + addr})
	waitReady(t, p, base)
	for i, ex := range examples {
		if strings.Contains(ex[1], `"query": "{`) { // the queries, not the mutations
			run(i, ex[1], ex[2])
		}
	}
	p.stop(30 * time.Second)
}
