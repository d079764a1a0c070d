package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/hindsight-dev/hindsight/internal/jsonvalue"
)

// jqDecode turns JSON (an event's data or metadata, a stored state) into
// the value jq reads, or nil for empty or invalid JSON (the store holds
// valid JSON only).
//
// Numbers are what gojq's own fromjson gives, json.Number, which gojq takes
// as a number and writes back as it was written, so no precision is lost:
// json.Unmarshal made every number a float64, which rounded integers past
// 2^53 (two account ids could land in one partition). An integer that fits
// an int is an int instead: the same value to gojq (it parses a json.Number
// so) and cheaper, as most numbers in events are small integers.
//
// The decoder is jsontext's (internal/jsonvalue), not encoding/json's,
// because this runs for every event a projection folds: encoding/json
// validates the whole input before decoding it, and reaches numbers as
// json.Number only through a Decoder, which buffers a copy; together that
// was a tenth of a simple reducer's fold. It reads the store's JSON as
// encoding/json does (a repeated name: the last one; invalid UTF-8: U+FFFD),
// and an input it refuses goes to encoding/json whole, so the two agree
// (TestJQDecodeAgreesWithEncodingJSON, FuzzJQDecode).
func jqDecode(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	if v, err := decodeJQ(b); err == nil {
		return v
	}
	v, _ := decodeJQSlow(b)
	return v
}

// decodeJQSlow is gojq's own way (fromjson): encoding/json with numbers as
// json.Number.
func decodeJQSlow(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errJSONSyntax
	}
	return v, nil
}

var errJSONSyntax = errors.New("invalid JSON")

// jqOptions read JSON as encoding/json does: the store keeps what it took.
var jqOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// jqDecoders are reused: a decoder's set-up was a third of decoding a
// small event.
var jqDecoders = sync.Pool{New: func() any { return new(jqDecoder) }}

type jqDecoder struct {
	in  bytes.Buffer
	dec jsontext.Decoder
}

func decodeJQ(b []byte) (any, error) { return decodeFast(b, jqNumber) }

// decodeFast decodes JSON with jsontext as encoding/json would (see
// jqDecode), each number what number makes of its literal. It refuses some
// inputs encoding/json takes; callers then decode those with encoding/json.
func decodeFast(b []byte, number func(lit string) any) (any, error) {
	d := jqDecoders.Get().(*jqDecoder)
	defer func() {
		d.in = bytes.Buffer{} // let go of b
		d.dec.Reset(&d.in)
		jqDecoders.Put(d)
	}()
	d.in = *bytes.NewBuffer(b)
	d.dec.Reset(&d.in, jqOptions...)
	v, err := jsonvalue.Decode(&d.dec, number)
	if err != nil {
		return nil, err
	}
	return v, jsonvalue.AtEnd(&d.dec)
}

// jqNumber is a number as JSON writes it: an int when it is an integer that
// fits one, json.Number otherwise (see jqDecode).
func jqNumber(lit string) any {
	// -0 stays json.Number: as an int it would be written 0.
	if strings.IndexAny(lit, ".eE") < 0 && lit != "-0" {
		if n, ok := smallInt(lit); ok {
			return n
		}
		if n, err := strconv.ParseInt(lit, 10, 0); err == nil {
			return int(n)
		}
	}
	return json.Number(lit)
}

// smallInt reads an integer of at most 18 digits, which cannot overflow.
func smallInt(lit string) (int, bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	if len(lit) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range lit {
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
