package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// Each rendering of a request has its own operation name, so the server's
// query cache cannot hide the cost of parsing and validating it, and stays
// valid JSON with the variables intact.
func TestBodyUniqueNames(t *testing.T) {
	for _, a := range attacks() {
		var b0, b1 struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.Unmarshal(a.body(0), &b0); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		if err := json.Unmarshal(a.body(1), &b1); err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		if b0.Query == b1.Query {
			t.Errorf("%s: the same document twice: %.60s", a.name, b0.Query)
		}
		if !strings.HasPrefix(b1.Query, "query Q1 ") && !strings.HasPrefix(b1.Query, "mutation M1(") {
			t.Errorf("%s: no operation name: %.60s", a.name, b1.Query)
		}
		if len(b0.Variables) != len(a.vars) {
			t.Errorf("%s: variables %d, want %d", a.name, len(b0.Variables), len(a.vars))
		}
	}
}

// The attacker process gets its orders in one environment variable; an
// empty -exclude survives the round trip.
func TestAttackSpecRoundTrip(t *testing.T) {
	for _, s := range []attackSpec{
		{base: "http://127.0.0.1:1234", attackers: 8, transport: "post", exclude: "verify,8 MiB"},
		{base: "http://[::1]:80", attackers: 1, transport: "ws", exclude: ""},
	} {
		got, err := parseAttack(s.String())
		if err != nil || got != s {
			t.Errorf("parseAttack(%q) = %+v, %v; want %+v", s.String(), got, err, s)
		}
	}
	if _, err := parseAttack("http://x\t0\tpost\t"); err == nil {
		t.Error("0 attackers accepted")
	}
}
