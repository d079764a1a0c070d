package projections

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/itchyny/gojq"

	"github.com/hindsight-dev/hindsight/eventstore"
)

// jqDecodeCases are JSON texts for the decoder's tests and the fuzz seeds.
var jqDecodeCases = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-0.0`, `7`, `-7`, `255`, `256`, `1.5`, `1.50`, `1e3`, `-2.5E-3`,
	`9007199254740993`, `12345678901234567890`, `-12345678901234567890`, `999999999999999999`, `9223372036854775807`,
	`9223372036854775808`, `1e1000`, `"plain"`, `"caf\u00e9"`, `"café €"`, `"tab\tnew\nline \"q\" \\ \/"`,
	`"\ud83d\ude00"`, "\"bad \xff utf8\"", ` { "a" : [ 1 , { "b" : null } ] , "c" : "d" } `,
	`{"a":1,"a":2}`, `{"customerId":"c-1","items":[{"sku":"A","quantity":1,"unitPriceCents":100}]}`,
	// Not JSON: nil either way.
	``, `{`, `[1,]`, `{"a"}`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nul`, `"open`, "\"ctl\x01\"", `{} x`, `1 2`,
	`[1] ]`, `{"a":1}}`, `+1`, `NaN`,
}

// TestJQDecodeAgreesWithEncodingJSON: the decoder gives what gojq's own
// decoding (encoding/json with json.Number, as its fromjson) gives, as jq
// sees it: the same JSON when written back, and the same value to jq's
// comparison; and it refuses what encoding/json refuses.
func TestJQDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range jqDecodeCases {
		checkJQDecode(t, []byte(in))
	}
}

func FuzzJQDecode(f *testing.F) {
	for _, in := range jqDecodeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(checkJQDecode)
}

func checkJQDecode(t *testing.T, in []byte) {
	got, err := decodeJQ(in)
	want, wantErr := decodeJQSlow(in)
	if (err != nil) != (wantErr != nil) || (wantErr == nil) != json.Valid(in) {
		t.Fatalf("%q: error %v, encoding/json's %v", in, err, wantErr)
	}
	if err != nil {
		if v := jqDecode(in); v != nil {
			t.Fatalf("%q is not JSON but decodes to %v", in, v)
		}
		return
	}
	a, errA := gojq.Marshal(got)
	b, errB := gojq.Marshal(want)
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Fatalf("%q: written back %s (%v), encoding/json's %s (%v)", in, a, errA, b, errB)
	}
	if same, _ := gojq.Compile(mustParse(t, `.[0] == .[1]`)); true {
		if v, _ := same.Run([]any{got, want}).Next(); v != true {
			t.Fatalf("%q: %#v and encoding/json's %#v differ to jq", in, got, want)
		}
	}
}

func mustParse(t *testing.T, src string) *gojq.Query {
	q, err := gojq.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestJQDecodeNumbers: the kinds of number jq gets. Integers that fit an
// int are ints; anything else keeps its digits as json.Number.
func TestJQDecodeNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{`7`, 7}, {`-7`, -7}, {`0`, 0}, {`-0`, json.Number("-0")}, {`999999999999999999`, 999999999999999999},
		{`9223372036854775807`, 9223372036854775807}, {`9223372036854775808`, json.Number("9223372036854775808")},
		{`12345678901234567890`, json.Number("12345678901234567890")}, {`1.50`, json.Number("1.50")}, {`1e3`, json.Number("1e3")},
	} {
		got, err := decodeJQ([]byte(tc.in))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%s: %#v (%v), want %#v", tc.in, got, err, tc.want)
		}
	}
}

// TestLargeIntegersKeepTheirDigits: integers past 2^53 in events were
// float64s, so two account ids one apart were one partition and a reducer
// that kept one wrote another number. They keep their digits now.
func TestLargeIntegersKeepTheirDigits(t *testing.T) {
	prog, err := compile(Definition{Name: "x", StreamPrefix: "acct-", PartitionBy: ".data.account",
		Reducer: `.state.account = .event.data.account | .state.next = .event.data.account + 1 | .state`}, time.Second, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ account, key, state string }{
		{`12345678901234567890`, "12345678901234567890", `{"account":12345678901234567890,"next":12345678901234567891}`},
		{`12345678901234567891`, "12345678901234567891", `{"account":12345678901234567891,"next":12345678901234567892}`},
		{`9007199254740993`, "9007199254740993", `{"account":9007199254740993,"next":9007199254740994}`},
		{`7.0`, "7", `{"account":7.0,"next":8}`},
	} {
		ev := eventstore.Event{ID: "e", StreamID: "acct-1", Type: "Opened", Version: 1, Position: 1,
			RecordedAt: time.Unix(1700000000, 0), Data: json.RawMessage(`{"account":` + tc.account + `}`)}
		event := eventValue(&ev)
		key, f := prog.partitionKey(&ev, event)
		if f != nil || key != tc.key {
			t.Fatalf("%s: key %q (%v), want %q", tc.account, key, f, tc.key)
		}
		_, got, f := prog.reduce(prog.initial, event)
		if f != nil || string(got) != tc.state {
			t.Fatalf("%s: state %s (%v), want %s", tc.account, got, f, tc.state)
		}
	}
}
