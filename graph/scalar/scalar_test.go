package scalar

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestPosition(t *testing.T) {
	good := []struct {
		in   any
		want int64
	}{
		{"0", 0}, {"42", 42}, {"9223372036854775807", 1<<63 - 1},
		{json.Number("7"), 7}, {int64(8), 8}, {9, 9}, {float64(10), 10},
	}
	for _, c := range good {
		got, err := UnmarshalPosition(c.in)
		if err != nil || got != c.want {
			t.Errorf("UnmarshalPosition(%#v) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []any{"", "-1", "+1", "1.5", "abc", " 1", "99999999999999999999", json.Number("-3"),
		json.Number("1.5"), int64(-1), 1.5, true, nil, []any{}} {
		_, err := UnmarshalPosition(in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("UnmarshalPosition(%#v): err %v, want *Error", in, err)
		}
	}
	var b bytes.Buffer
	MarshalPosition(1234567890123).MarshalGQL(&b)
	if b.String() != `"1234567890123"` {
		t.Errorf("MarshalPosition = %s", b.String())
	}
}

func TestTime(t *testing.T) {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	var b bytes.Buffer
	MarshalTime(ts).MarshalGQL(&b)
	if b.String() != `"2026-11-23T09:00:00.123456789Z"` {
		t.Errorf("MarshalTime = %s", b.String())
	}
	for _, in := range []string{"2026-11-23T09:00:00.123456789Z", "2026-11-23T10:00:00.123456789+01:00"} {
		got, err := UnmarshalTime(in)
		if err != nil || !got.Equal(ts) {
			t.Errorf("UnmarshalTime(%q) = %v, %v", in, got, err)
		}
	}
	if got, err := UnmarshalTime("2026-11-23T09:00:00Z"); err != nil || !got.Equal(ts.Truncate(time.Second)) {
		t.Errorf("without fraction: %v, %v", got, err)
	}
	for _, in := range []any{"2026-11-23", "yesterday", 12, nil} {
		if _, err := UnmarshalTime(in); err == nil {
			t.Errorf("UnmarshalTime(%#v) accepted", in)
		}
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"b": json.Number("1.50"), "a": []any{true, nil, "<x>"}}, `{"a":[true,null,"<x>"],"b":1.50}`},
		{"s", `"s"`},
		{int64(3), `3`},
		{nil, `null`},
	}
	for _, c := range tests {
		got, err := UnmarshalJSON(c.in)
		if err != nil || string(got) != c.want {
			t.Errorf("UnmarshalJSON(%#v) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	var b bytes.Buffer
	MarshalJSON(json.RawMessage(`{"x":1}`)).MarshalGQL(&b)
	if b.String() != `{"x":1}` {
		t.Errorf("MarshalJSON = %s", b.String())
	}
	b.Reset()
	MarshalJSON(nil).MarshalGQL(&b)
	if b.String() != `null` {
		t.Errorf("MarshalJSON(nil) = %s", b.String())
	}
}
