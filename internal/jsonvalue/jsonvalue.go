// Package jsonvalue walks JSON text with jsontext (the encoding/json/v2
// prototype), which parses a bytes.Buffer in place at about 3 GB/s without
// validating the whole input first: the objects and arrays of a request
// body (graph), of a websocket message (graph/wstransport) and of the
// events a declarative projection folds (projections) are read by the same
// few functions, each caller choosing what a number becomes. StringEnd and
// SpaceOutsideStrings are the byte scans that run before a parse (a body's
// depth, whether text is compact already): they jump from quote to quote
// with bytes.IndexByte instead of looking at every byte.
package jsonvalue

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// EachMember reads an object, calling f with each member's name to read
// its value. The name is a string already: a token is void after the next
// read.
func EachMember(dec *jsontext.Decoder, f func(name string) error) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' { // 0 on an error, which the next read returns
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if err := f(name.String()); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// EachItem reads an array, calling f to read each item.
func EachItem(dec *jsontext.Decoder, f func() error) error {
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if err := f(); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// AtEnd reports an error unless dec's input has nothing after the value
// read but white space.
func AtEnd(dec *jsontext.Decoder) error {
	_, err := dec.ReadToken()
	switch {
	case err == nil:
		return errors.New("more than one JSON value")
	case errors.Is(err, io.EOF):
		return nil
	}
	return err
}

// Decode decodes the next value as encoding/json decodes into an any:
// map[string]any, []any, string, bool and nil, with each number what
// number makes of its literal (json.Number for gqlgen's variables, an int
// where one fits for gojq).
func Decode(dec *jsontext.Decoder, number func(lit string) any) (any, error) {
	switch dec.PeekKind() {
	case '{':
		m := map[string]any{}
		err := EachMember(dec, func(name string) (err error) {
			m[name], err = Decode(dec, number)
			return err
		})
		return m, err
	case '[':
		l := []any{}
		err := EachItem(dec, func() error {
			v, err := Decode(dec, number)
			l = append(l, v)
			return err
		})
		return l, err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case '0':
		return number(tok.String()), nil // a number's String is its literal
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	return nil, fmt.Errorf("unexpected %v", tok.Kind())
}

// StringEnd returns the index of the quote that closes the JSON string
// whose contents start at b[from], or -1. It jumps from quote to quote: a
// quote preceded by an odd number of backslashes is inside the string.
func StringEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		escapes := 0
		for k := i - 1; k >= from && b[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return i
		}
		i++
	}
}

// SpaceOutsideStrings reports whether JSON text b has white space outside
// its strings, jumping from string to string.
func SpaceOutsideStrings(b []byte) bool {
	for {
		open := bytes.IndexByte(b, '"')
		if open < 0 {
			return bytes.ContainsAny(b, " \t\r\n")
		}
		if bytes.ContainsAny(b[:open], " \t\r\n") {
			return true
		}
		end := StringEnd(b, open+1)
		if end < 0 {
			return false // an unterminated string: not JSON, which the caller's parse reports
		}
		b = b[end+1:]
	}
}
