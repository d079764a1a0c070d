package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// chromiumPath is Debian's Chromium, which the browser tests drive through
// playwright-core (npm tools cannot download browsers here).
const chromiumPath = "/usr/bin/chromium"

// installChromium is the one command that makes the browser tests run on a
// Debian or Ubuntu machine; skip messages name it.
const installChromium = "sudo apt-get update && sudo apt-get install -y chromium"

var (
	chromiumOnce sync.Once
	chromiumErr  error
)

// needChromium returns the path of Chromium, installing Debian's package
// with apt-get first where it is missing and the test runs as root. Where
// it cannot be installed the test is skipped with the command to run, except
// in CI (CI=true, or HINDSIGHT_REQUIRE_BROWSER=1 as .ci/run sets), where the
// browser tests must always run and a missing Chromium fails them.
func needChromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() { chromiumErr = ensureChromium(t) })
	if chromiumErr == nil {
		return chromiumPath
	}
	msg := fmt.Sprintf("Chromium is needed for the browser tests and could not be installed (%v); install it with `%s`", chromiumErr, installChromium)
	if browserRequired() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browserRequired reports whether a skipped browser test counts as a
// failure: on CI runners (which set CI=true) and under .ci/run.
func browserRequired() bool {
	ci := strings.ToLower(os.Getenv("CI"))
	return ci == "true" || ci == "1" || os.Getenv("HINDSIGHT_REQUIRE_BROWSER") == "1"
}

func ensureChromium(t *testing.T) error {
	if _, err := os.Stat(chromiumPath); err == nil {
		return nil
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return fmt.Errorf("%s is missing and apt-get is not available", chromiumPath)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s is missing and installing it needs root", chromiumPath)
	}
	t.Logf("%s is missing: installing Debian's chromium package with apt-get (once; a minute or two)", chromiumPath)
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
		cmd := exec.Command(aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		return fmt.Errorf("apt-get installed chromium but %s is still missing", chromiumPath)
	}
	return nil
}

// TestBrowserRequired: which environments turn a browser test that cannot
// run into a failure.
func TestBrowserRequired(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"TRUE", "", true},
		{"1", "", true},
		{"false", "", false},
		{"", "1", true},
		{"false", "1", true},
		{"", "0", false},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("HINDSIGHT_REQUIRE_BROWSER", tc.require)
		if got := browserRequired(); got != tc.want {
			t.Errorf("CI=%q HINDSIGHT_REQUIRE_BROWSER=%q: required %v, want %v", tc.ci, tc.require, got, tc.want)
		}
	}
}
