package graph_test

import (
	"errors"
	"testing"

	"github.com/hindsight-dev/hindsight/graph"
)

func TestCheckJSONText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"ascii", `{"a":"b"}`, true},
		{"unicode", `{"a":"ストリーム"}`, true},
		{"escaped pair", `{"a":"\ud83d\ude00"}`, true},
		{"escaped bmp", `{"a":"\u00e9\u4e2d"}`, true},
		{"escaped backslash then u", `{"a":"\\ud800"}`, true},
		{"invalid byte", "{\"a\":\"\xff\"}", false},
		{"truncated rune", "{\"a\":\"\xe3\x82\"}", false},
		{"lone high", `{"a":"\ud800"}`, false},
		{"lone high then text", `{"a":"\ud800abcdef"}`, false},
		{"lone low", `{"a":"\udc00"}`, false},
		{"high then high", `{"a":"\ud800\ud800"}`, false},
		{"escaped quote then lone", `{"a":"\"\udfff"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := graph.CheckJSONText([]byte(tc.in))
			if tc.ok && err != nil {
				t.Fatalf("CheckJSONText(%q) = %v, want nil", tc.in, err)
			}
			if !tc.ok && !errors.Is(err, graph.ErrNotText) {
				t.Fatalf("CheckJSONText(%q) = %v, want ErrNotText", tc.in, err)
			}
		})
	}
}
