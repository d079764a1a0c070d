package main

import "testing"

func TestField(t *testing.T) {
	msg := []byte(`{"id":"1","type":"next","payload":{"data":{"events":{"position":"1234","recordedAt":"2030-01-02T03:04:05.123456789Z"}}}}`)
	for _, c := range []struct {
		key, want string
		ok        bool
	}{
		{`"position":"`, "1234", true},
		{`"recordedAt":"`, "2030-01-02T03:04:05.123456789Z", true},
		{`"errors":"`, "", false},
	} {
		got, ok := field(msg, []byte(c.key))
		if string(got) != c.want || ok != c.ok {
			t.Errorf("field(%s) = %q, %v; want %q, %v", c.key, got, ok, c.want, c.ok)
		}
	}
}

func TestParsePosition(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1234", 1234, true},
		{"999999999999999999", 999999999999999999, true},
		{"", 0, false},
		{"12a", 0, false},
		{"-1", 0, false},
		{"1234567890123456789", 0, false},
	} {
		got, ok := parsePosition([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("parsePosition(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
