package graph_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeDeclarativeProjections runs exactly the commands of the README's
// "Declarative projections" section, in order, on a fresh store, and checks
// that each answer is exactly the one the README shows after it.
func TestReadmeDeclarativeProjections(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Declarative projections\n")
	if start < 0 {
		t.Fatal("the README has no section Declarative projections")
	}
	section = section[start+1:]
	section = section[:strings.Index(section, "\n## ")]
	// Each example: curl ... -d '<body>' followed by a line "# <answer>".
	examples := regexp.MustCompile(`(?s)-d '(.*?)'\n# (\{.*?\})\n`).FindAllStringSubmatch(section, -1)
	if len(examples) != 8 {
		t.Fatalf("found %d examples with answers in the README section, want 8", len(examples))
	}
	h := newHarness(t)
	for i, ex := range examples {
		body, want := ex[1], ex[2]
		status, errs, data := h.post(body)
		var got, wantv any
		if err := json.Unmarshal([]byte(`{"data":`+string(data)+`}`), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(want), &wantv); err != nil {
			t.Fatalf("example %d: the README's answer is not JSON: %v", i+1, err)
		}
		if status != 200 || len(errs) > 0 || !reflect.DeepEqual(got, wantv) {
			t.Fatalf("example %d:\n%s\nstatus %d, errors %+v\n got {\"data\":%s}\nwant %s", i+1, body, status, errs, data, want)
		}
	}
}
