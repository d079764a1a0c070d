package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigPrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want func(c *config) bool
	}{
		{"defaults", nil, env(), func(c *config) bool {
			return c.Addr == "127.0.0.1:8080" && c.MongoURI == "" && c.DataDir == "./data" && c.Database == "hindsight" &&
				c.CORSOrigins == nil && c.MemoryBudget == 1<<30 && c.SubscriberMaxLag == 10000 &&
				c.MaxSubscriptionsPerConn == 100 && c.MaxConnections == 10000 && c.MaxBodyBytes == 8<<20 &&
				c.LogLevel == slog.LevelInfo && c.LogFormat == "auto" && c.MaxFields == 300 && c.AllowedHosts == nil &&
				c.HeavyShare == 0.33
		}},
		{"environment over default", nil, env("HINDSIGHT_ADDR", "0.0.0.0:9000", "HINDSIGHT_MONGODB_URI", "mongodb://a,b/?replicaSet=rs0",
			"HINDSIGHT_DATABASE", "prod", "HINDSIGHT_CORS_ORIGINS", "https://a.example, https://b.example/",
			"HINDSIGHT_MEMORY_BUDGET", "512MiB", "HINDSIGHT_MAX_CONNECTIONS", "7"), func(c *config) bool {
			return c.Addr == "0.0.0.0:9000" && c.MongoURI == "mongodb://a,b/?replicaSet=rs0" && c.Database == "prod" &&
				reflect.DeepEqual(c.CORSOrigins, []string{"https://a.example", "https://b.example"}) &&
				c.MemoryBudget == 512<<20 && c.MaxConnections == 7
		}},
		{"abuse limits", nil, env("HINDSIGHT_MAX_FIELDS", "500", "HINDSIGHT_ALLOWED_HOSTS", "hindsight.internal, [fd00::1] ,10.0.0.5"), func(c *config) bool {
			return c.MaxFields == 500 && reflect.DeepEqual(c.AllowedHosts, []string{"hindsight.internal", "fd00::1", "10.0.0.5"})
		}},
		{"flag over environment", []string{"--addr", "127.0.0.1:1", "-data-dir=/x"},
			env("HINDSIGHT_ADDR", "0.0.0.0:9000", "HINDSIGHT_DATA_DIR", "/y"), func(c *config) bool {
				return c.Addr == "127.0.0.1:1" && c.DataDir == "/x"
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags("serve", serveSettings, tc.args, tc.env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{[]string{"--addr", "nope"}, env(), "addr"},
		{nil, env("HINDSIGHT_MEMORY_BUDGET", "lots"), "HINDSIGHT_MEMORY_BUDGET"},
		{nil, env("HINDSIGHT_MONGODB_URI", "http://x"), "HINDSIGHT_MONGODB_URI"},
		{nil, env("HINDSIGHT_CORS_ORIGINS", "example.com"), "HINDSIGHT_CORS_ORIGINS"},
		{nil, env("HINDSIGHT_SUBSCRIBER_MAX_LAG", "0"), "HINDSIGHT_SUBSCRIBER_MAX_LAG"},
		{nil, env("HINDSIGHT_MAX_BODY_BYTES", "1KiB"), "HINDSIGHT_MAX_BODY_BYTES"},
		{nil, env("HINDSIGHT_DEBUG_ADDR", "6060"), "HINDSIGHT_DEBUG_ADDR"},
		{nil, env("HINDSIGHT_ALLOWED_HOSTS", "example.com:8080"), "HINDSIGHT_ALLOWED_HOSTS"},
		{nil, env("HINDSIGHT_ALLOWED_HOSTS", "https://example.com"), "HINDSIGHT_ALLOWED_HOSTS"},
		{nil, env("HINDSIGHT_MAX_FIELDS", "0"), "HINDSIGHT_MAX_FIELDS"},
		{nil, env("HINDSIGHT_HEAVY_SHARE", "0"), "HINDSIGHT_HEAVY_SHARE"},
		{nil, env("HINDSIGHT_HEAVY_SHARE", "1.5"), "HINDSIGHT_HEAVY_SHARE"},
		{[]string{"extra"}, env(), "unexpected argument"},
		{[]string{"--nope"}, env(), "unknown flag"},
	} {
		_, err := parseFlags("serve", serveSettings, tc.args, tc.env, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "512B": 512, "1KiB": 1024, "512MiB": 512 << 20, "2GiB": 2 << 30, "1gib": 1 << 30,
		"2GB": 2e9, "3M": 3e6, "4Mi": 4 << 20, " 5 MiB ": 5 << 20, "1TiB": 1 << 40,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5GiB", "1XB", "99999999TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestREADMEDocumentsEverySetting keeps the README's configuration table in
// step with the flags.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range serveSettings {
		if !strings.Contains(string(readme), "`"+s.env()+"`") || !strings.Contains(string(readme), "`--"+s.name+"`") {
			t.Errorf("README.md does not document %s / --%s", s.env(), s.name)
		}
	}
}
