package scalar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// TestBuiltinInputCoercion holds each built-in scalar to GraphQL §3.5: what
// it accepts (from a variable, decoded with UseNumber; from a literal; or
// decoded without UseNumber) and what it refuses, with a *Error whose message
// echoes no Go type.
func TestBuiltinInputCoercion(t *testing.T) {
	type unmarshal func(any) (any, error)
	wrap := func(f any) unmarshal {
		switch f := f.(type) {
		case func(any) (string, error):
			return func(v any) (any, error) { return f(v) }
		case func(any) (int, error):
			return func(v any) (any, error) { return f(v) }
		case func(any) (int32, error):
			return func(v any) (any, error) { return f(v) }
		case func(any) (int64, error):
			return func(v any) (any, error) { return f(v) }
		case func(any) (float64, error):
			return func(v any) (any, error) { return f(v) }
		case func(any) (bool, error):
			return func(v any) (any, error) { return f(v) }
		}
		panic("unexpected function type")
	}
	floatCtx := func(v any) (float64, error) { return UnmarshalFloatContext(context.Background(), v) }
	tests := []struct {
		scalar string
		fn     unmarshal
		good   map[any]any // input -> result
		bad    []any
	}{
		{"String", wrap(UnmarshalString),
			map[any]any{"": "", "x": "x", "5": "5", nil: ""},
			[]any{json.Number("5"), json.Number("1.5"), 5, int64(5), 5.0, true, false, []any{"x"}, map[string]any{"x": "y"}, []string{"x"}}},
		{"Int", wrap(UnmarshalInt),
			map[any]any{json.Number("0"): 0, json.Number("-7"): -7, json.Number("2147483647"): math.MaxInt32,
				json.Number("-2147483648"): math.MinInt32, int64(10): 10, 10: 10, int32(3): 3, 42.0: 42, nil: 0},
			[]any{"10", "ten", "", json.Number("1.5"), json.Number("1.0"), json.Number("1e3"), json.Number("2147483648"),
				json.Number("-2147483649"), json.Number("99999999999999999999"), int64(math.MaxInt32 + 1), int64(math.MinInt32 - 1),
				1.5, 3e9, math.NaN(), math.Inf(1), true, []any{1}, map[string]any{}}},
		{"Int32", wrap(UnmarshalInt32),
			map[any]any{json.Number("2147483647"): int32(math.MaxInt32), int64(-1): int32(-1)},
			[]any{"1", json.Number("2147483648"), 0.5}},
		{"Int64", wrap(UnmarshalInt64),
			map[any]any{json.Number("-2147483648"): int64(math.MinInt32), int64(9): int64(9), nil: int64(0)},
			[]any{"9", json.Number("2147483648"), int64(1) << 40, false}},
		{"Float", wrap(UnmarshalFloat),
			map[any]any{json.Number("1.5"): 1.5, json.Number("1e3"): 1000.0, json.Number("-2"): -2.0, 7: 7.0, int64(7): 7.0,
				int32(7): 7.0, 2.25: 2.25, nil: 0.0},
			[]any{"1.5", "", json.Number("1e400"), math.NaN(), math.Inf(-1), true, []any{1.0}}},
		{"FloatContext", wrap(floatCtx),
			map[any]any{json.Number("0.5"): 0.5},
			[]any{"0.5"}},
		{"Boolean", wrap(UnmarshalBoolean),
			map[any]any{true: true, false: false, nil: false},
			[]any{"true", "false", 1, 0, json.Number("1"), map[string]any{}}},
		{"ID", wrap(UnmarshalID),
			map[any]any{"abc": "abc", "": "", json.Number("42"): "42", json.Number("-3"): "-3",
				json.Number("123456789012345678901234567890"): "123456789012345678901234567890",
				int64(42): "42", 42: "42", int32(42): "42", 42.0: "42", nil: ""},
			[]any{json.Number("1.5"), json.Number("1e3"), 1.5, float64(1 << 60), true, []any{"a"}, map[string]any{"a": 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.scalar, func(t *testing.T) {
			for in, want := range tc.good {
				got, err := tc.fn(in)
				if err != nil || got != want {
					t.Errorf("%T %#v: got %#v, %v; want %#v", in, in, got, err, want)
				}
			}
			for _, in := range tc.bad {
				_, err := tc.fn(in)
				var se *Error
				if !errors.As(err, &se) {
					t.Errorf("%T %#v: got %v, want a *scalar.Error", in, in, err)
					continue
				}
				for _, leak := range []string{"json.Number", "float", "int", "[]", "map["} {
					if strings.Contains(se.Msg, leak) {
						t.Errorf("%T %#v: the message leaks %q: %q", in, in, leak, se.Msg)
					}
				}
			}
		})
	}
}

// TestBuiltinOutputUnchanged checks that output stays what gqlgen writes.
func TestBuiltinOutputUnchanged(t *testing.T) {
	write := func(m graphql.Marshaler) string {
		var b bytes.Buffer
		m.MarshalGQL(&b)
		return b.String()
	}
	pairs := []struct{ ours, gqlgen graphql.Marshaler }{
		{MarshalString("a\"b\n"), graphql.MarshalString("a\"b\n")},
		{MarshalInt(-5), graphql.MarshalInt(-5)},
		{MarshalInt32(7), graphql.MarshalInt32(7)},
		{MarshalInt64(1 << 40), graphql.MarshalInt64(1 << 40)},
		{MarshalBoolean(true), graphql.MarshalBoolean(true)},
		{MarshalID("x-1"), graphql.MarshalID("x-1")},
	}
	for _, p := range pairs {
		if got, want := write(p.ours), write(p.gqlgen); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	var b bytes.Buffer
	if err := MarshalFloatContext(1.5).MarshalGQLContext(context.Background(), &b); err != nil || b.String() != "1.5" {
		t.Errorf("Float 1.5: %q, %v", b.String(), err)
	}
	if err := MarshalFloatContext(math.Inf(1)).MarshalGQLContext(context.Background(), &b); err == nil {
		t.Error("Float +Inf: no error")
	}
}
