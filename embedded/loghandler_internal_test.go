package embedded

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// counted is an attribute value that counts how often a handler resolves
// it: slog's handlers do so when the attribute is given to With.
type counted struct{ n *int }

func (c counted) LogValue() slog.Value { *c.n++; return slog.StringValue("doc") }

// TestFerretLogAttrsLazy: what FerretDB attaches with With (a statement's
// arguments, whole documents) is formatted only for a record that is passed
// on, in the order of With and WithGroup, and loggers made from one logger
// do not share what is added to each.
func TestFerretLogAttrsLazy(t *testing.T) {
	var out bytes.Buffer
	inner := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
	base := slog.New(ferretLogHandler{min: slog.LevelWarn, inner: inner}).With(slog.String("component", "ferretdb"))
	resolved := 0
	stmt := base.WithGroup("sql").With(slog.Any("args", counted{&resolved}))

	stmt.Debug("running a statement")
	stmt.Info("ran a statement")
	if resolved != 0 || out.Len() != 0 {
		t.Fatalf("below the level: args resolved %d times, wrote %q", resolved, out.String())
	}
	stmt.Warn("Connection stopped") // noise below error level
	if resolved != 0 || out.Len() != 0 {
		t.Fatalf("noise: args resolved %d times, wrote %q", resolved, out.String())
	}

	stmt.Warn("slow statement")
	if resolved != 1 {
		t.Fatalf("a warning: args resolved %d times, want 1", resolved)
	}
	if got := out.String(); !strings.Contains(got, `msg="slow statement" component=ferretdb sql.args=doc`) {
		t.Fatalf("a warning wrote %q", got)
	}

	out.Reset()
	a, b := base.With("a", 1), base.With("b", 2)
	a.Error("one")
	b.Error("two")
	for _, c := range []struct{ got, want, not string }{
		{strings.Split(out.String(), "\n")[0], "component=ferretdb a=1", "b=2"},
		{strings.Split(out.String(), "\n")[1], "component=ferretdb b=2", "a=1"},
	} {
		if !strings.Contains(c.got, c.want) || strings.Contains(c.got, c.not) {
			t.Errorf("%q: want %q without %q", c.got, c.want, c.not)
		}
	}
}
