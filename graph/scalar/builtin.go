package scalar

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// The built-in scalars (String, Int, Float, Boolean, ID) with the input
// coercion of the GraphQL spec (§3.5), which gqlgen's own functions relax:
// graphql.UnmarshalString turns a number or a Boolean into a string and
// graphql.UnmarshalInt parses "10". Here
//
//   - String accepts only a string;
//   - Int only a whole number in the signed 32-bit range (not "10", not 1.5);
//   - Float a finite number, whole or not (not "1.5");
//   - Boolean only true or false;
//   - ID a string or a whole number, which becomes its decimal digits.
//
// gqlgen.yml binds the built-ins to these function pairs, and package graph
// applies the same Unmarshal functions to variable values before an
// operation runs, so a wrong-typed variable is a request error (§6.1.2) and
// never reaches a resolver. Null is the zero value, as in gqlgen, because an
// optional argument with a non-pointer Go type receives an explicit null
// (nullability itself is checked by validation). Output is unchanged:
// the Marshal functions are gqlgen's.

// MarshalString writes s as a JSON string.
func MarshalString(s string) graphql.Marshaler { return graphql.MarshalString(s) }

// UnmarshalString accepts only a string. A JSON number in a variable arrives
// as json.Number, a string underneath, and is refused like any number.
func UnmarshalString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", errorf("String cannot represent %s; send a JSON string", kindOf(v))
}

// MarshalInt writes i as a JSON number.
func MarshalInt(i int) graphql.Marshaler { return graphql.MarshalInt(i) }

// UnmarshalInt accepts a whole number in the signed 32-bit range.
func UnmarshalInt(v any) (int, error) {
	n, err := int32Of(v)
	return int(n), err
}

// MarshalInt32 writes i as a JSON number.
func MarshalInt32(i int32) graphql.Marshaler { return graphql.MarshalInt32(i) }

// UnmarshalInt32 accepts a whole number in the signed 32-bit range.
func UnmarshalInt32(v any) (int32, error) { return int32Of(v) }

// MarshalInt64 writes i as a JSON number.
func MarshalInt64(i int64) graphql.Marshaler { return graphql.MarshalInt64(i) }

// UnmarshalInt64 accepts a whole number in the signed 32-bit range: the Go
// type is wider, the GraphQL Int is not.
func UnmarshalInt64(v any) (int64, error) {
	n, err := int32Of(v)
	return int64(n), err
}

const intRange = "a whole number from -2147483648 to 2147483647"

func int32Of(v any) (int32, error) {
	var (
		n  int64
		ok bool
	)
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int:
		n, ok = int64(v), true
	case int8:
		n, ok = int64(v), true
	case int16:
		n, ok = int64(v), true
	case int32:
		return v, nil
	case int64:
		n, ok = v, true
	case json.Number:
		// Integer syntax only, as gqlparser requires of a top-level Int
		// variable: 1.0 and 1e3 are refused.
		p, err := strconv.ParseInt(string(v), 10, 64)
		n, ok = p, err == nil
		if err != nil && isInteger(string(v)) {
			return 0, errorf("Int cannot represent a number this large; send %s", intRange)
		}
	case float32:
		return int32OfFloat(float64(v))
	case float64: // variables decoded without json.Decoder.UseNumber
		return int32OfFloat(v)
	default:
		return 0, errorf("Int cannot represent %s; send %s", kindOf(v), intRange)
	}
	if !ok {
		return 0, errorf("%s is not an Int; send %s", shortNumber(fmt.Sprint(v)), intRange)
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, errorf("Int cannot represent %d; send %s", n, intRange)
	}
	return int32(n), nil
}

func int32OfFloat(f float64) (int32, error) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f):
		return 0, errorf("%g is not an Int; send %s", f, intRange)
	case f < math.MinInt32 || f > math.MaxInt32:
		return 0, errorf("Int cannot represent %g; send %s", f, intRange)
	}
	return int32(f), nil
}

// MarshalFloatContext writes f as a JSON number; infinities and NaN fail.
func MarshalFloatContext(f float64) graphql.ContextMarshaler { return graphql.MarshalFloatContext(f) }

// UnmarshalFloatContext accepts a finite number, whole or not.
func UnmarshalFloatContext(_ context.Context, v any) (float64, error) { return UnmarshalFloat(v) }

// UnmarshalFloat accepts a finite number, whole or not.
func UnmarshalFloat(v any) (float64, error) {
	var f float64
	switch v := v.(type) {
	case nil:
		return 0, nil
	case int:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case float32:
		f = float64(v)
	case float64:
		f = v
	case json.Number:
		p, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, errorf("Float cannot represent a number this large; send a finite number")
		}
		f = p
	default:
		return 0, errorf("Float cannot represent %s; send a JSON number", kindOf(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errorf("Float cannot represent a non-finite number; send a finite number")
	}
	return f, nil
}

// MarshalBoolean writes b as true or false.
func MarshalBoolean(b bool) graphql.Marshaler { return graphql.MarshalBoolean(b) }

// UnmarshalBoolean accepts only true or false.
func UnmarshalBoolean(v any) (bool, error) {
	switch v := v.(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	}
	return false, errorf("Boolean cannot represent %s; send true or false", kindOf(v))
}

// MarshalID writes an ID as a JSON string.
func MarshalID(s string) graphql.Marshaler { return graphql.MarshalID(s) }

// UnmarshalID accepts a string, or a whole number, which becomes its decimal
// digits (4 and "4" are the same ID).
func UnmarshalID(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case json.Number:
		if isInteger(string(v)) {
			return string(v), nil
		}
		return "", errorf("ID cannot represent a number with a fraction or an exponent; send a string or a whole number")
	case float64: // variables decoded without json.Decoder.UseNumber
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53-1 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return "", errorf("ID cannot represent a fractional or imprecise number; send a string or a whole number")
	}
	return "", errorf("ID cannot represent %s; send a string or a whole number", kindOf(v))
}

// isInteger reports whether s is JSON integer syntax: an optional minus and
// decimal digits, with no fraction or exponent.
func isInteger(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// kindOf names the JSON kind of v for error messages, without echoing client
// data or Go types back.
func kindOf(v any) string {
	switch reflect.ValueOf(v).Kind() {
	case reflect.Invalid:
		return "null"
	case reflect.Bool:
		return "a Boolean"
	case reflect.String:
		if _, ok := v.(json.Number); ok {
			return "a number"
		}
		return "a String"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a value of another type"
}

// shortNumber shows a client's number in a message, cut to 64 characters.
func shortNumber(s string) string {
	if len(s) > 64 { // a JSON number is ASCII
		return s[:64] + "…"
	}
	return s
}
