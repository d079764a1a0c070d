package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestHelpAndVersion: --help and help list every command and serve's flags
// with their variables; --version and version print the version.
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, nil},
		{[]string{"-help"}, nil},
		{[]string{"-h"}, nil},
		{[]string{"help"}, nil},
		{[]string{"--version"}, []string{"hindsight "}},
		{[]string{"version"}, []string{"hindsight "}},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, env(), &stdout, &stderr)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		want := tc.want
		if want == nil { // help
			want = []string{"hindsight [serve] [flags]", "hindsight devdb", "hindsight export", "hindsight import",
				"hindsight verify", "hindsight version", "hindsight help", "--version"}
			for _, s := range serveSettings {
				want = append(want, "--"+s.name, s.env())
			}
		}
		for _, w := range want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, stdout.String())
			}
		}
		if stderr.Len() > 0 {
			t.Errorf("%v wrote to stderr: %s", tc.args, stderr.String())
		}
	}
	// A command's own --help lists its flags, and exits 0.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"devdb", "--help"}, env(), io.Discard, &stderr)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err, io.Discard) != 0 ||
		!strings.Contains(stderr.String(), "--data-dir VALUE  (env HINDSIGHT_DATA_DIR, default ./data)") {
		t.Errorf("devdb --help: %v\n%s", err, stderr.String())
	}
}

// TestConfigErrorsInOurWords: every error names the flag or variable, the
// value and what is allowed, in one sentence, with nothing of Go's parsers.
func TestConfigErrorsInOurWords(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{nil, env("HINDSIGHT_LOG_LEVEL", "verbose"), `invalid HINDSIGHT_LOG_LEVEL "verbose": must be debug, info, warn or error`},
		{[]string{"--log-level=verbose"}, env(), `invalid --log-level "verbose": must be debug, info, warn or error`},
		{nil, env("HINDSIGHT_INSECURE", "maybe"), `invalid HINDSIGHT_INSECURE "maybe": must be true or false`},
		{[]string{"--insecure=maybe"}, env(), `invalid --insecure "maybe": must be true or false`},
		{nil, env("HINDSIGHT_ADDR", "8080"), `invalid HINDSIGHT_ADDR "8080": must be host:port, such as 127.0.0.1:8080 or :8080`},
		{nil, env("HINDSIGHT_ADDR", "localhost:http"), `invalid HINDSIGHT_ADDR "localhost:http": must be host:port, such as 127.0.0.1:8080 or :8080`},
		{nil, env("HINDSIGHT_MEMORY_BUDGET", "lots"), `invalid HINDSIGHT_MEMORY_BUDGET "lots": must be a size such as 512MiB or 2GB`},
		{nil, env("HINDSIGHT_MAX_DEPTH", "ten"), `invalid HINDSIGHT_MAX_DEPTH "ten": must be a positive integer`},
		{nil, env("HINDSIGHT_SLOW_OPERATION", "1 second"), `invalid HINDSIGHT_SLOW_OPERATION "1 second": must be a duration such as 500ms`},
		{[]string{"--nope"}, env(), `unknown flag -nope; hindsight serve --help lists the flags`},
		{[]string{"--addr"}, env(), `flag -addr needs a value, as in -addr=VALUE`},
		{[]string{"extra"}, env(), `unexpected argument "extra"; hindsight serve --help lists the flags`},
	} {
		_, err := parseFlags("serve", serveSettings, tc.args, tc.env, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || err.Error() != tc.want {
			t.Errorf("%v: err %v\nwant usage error %s", tc.args, err, tc.want)
		}
	}
	if err := run(context.Background(), []string{"serv"}, env(), io.Discard, io.Discard); err == nil ||
		err.Error() != `unknown command "serv"; hindsight --help lists the commands` || exitCode(err, io.Discard) != 2 {
		t.Errorf("unknown command: %v", err)
	}

	// Every setting that checks its value rejects garbage in the same form.
	for _, s := range serveSettings {
		const junk = "\x01junk value"
		err := s.set(&config{}, junk)
		if err == nil {
			continue // a file name or a secret: anything goes
		}
		_, err = parseFlags("serve", serveSettings, nil, env(s.env(), junk), io.Discard)
		msg := err.Error()
		prefix := `invalid ` + s.env() + ` "\x01junk value": `
		if !strings.HasPrefix(msg, prefix) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line starting %q", s.name, msg, prefix)
		}
		for _, leak := range []string{"strconv", "slog", "Parse", "invalid syntax", "missing port", "address "} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: %q shows Go's %q", s.name, msg, leak)
			}
		}
	}
}

// TestJSONLogDurations: the JSON log writes durations as Go duration
// strings, as the text log does, rather than nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		newLogger(&buf, format, slog.LevelInfo).Info("done", "took", 1500*time.Millisecond, slog.Group("g", "wait", 250*time.Microsecond))
		want := map[string][]string{
			"json": {`"took":"1.5s"`, `"wait":"250µs"`},
			"text": {`took=1.5s`, `g.wait=250µs`},
		}[format]
		for _, w := range want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s log %q lacks %s", format, buf.String(), w)
			}
		}
	}
}

// TestVersionOf: the version shows the revision go build stamped, marked
// -dirty for uncommitted changes.
func TestVersionOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "3f9c0d2e8b7a41c6a5d4e3f2a1b0c9d8e7f6a5b4"}}
	dirty := append(rev[:2:2], debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, tc := range []struct {
		version string
		bi      *debug.BuildInfo
		want    string
	}{
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: rev}, "devel (3f9c0d2e8b7a) go1.26.8"},
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: dirty}, "devel (3f9c0d2e8b7a-dirty) go1.26.8"},
		{"v1.2.0", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: rev}, "v1.2.0 (3f9c0d2e8b7a) go1.26.8"},
		{"", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}}, "v1.3.0 go1.26.8"},
		{"", nil, "devel"},
	} {
		if got := versionOf(tc.version, tc.bi, tc.bi != nil); got != tc.want {
			t.Errorf("versionOf(%q, %+v) = %q, want %q", tc.version, tc.bi, got, tc.want)
		}
	}
}
