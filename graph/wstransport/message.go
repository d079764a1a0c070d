package wstransport

import (
	"bytes"
	"errors"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/hindsight-dev/hindsight/internal/jsonvalue"
)

// decodeMessage decodes a client message in one pass with jsontext (the
// encoding/json/v2 prototype), its payload left as the bytes of b that hold
// it: b is the message's own buffer (serve makes one per message and never
// reuses it), so the view stays valid as long as anyone holds it. An 8 MiB
// subscribe took encoding/json a pass to check it, one to skip the payload
// and a copy of it. Unknown members are skipped; a null id or type is
// absent, as json.Unmarshal has it.
func decodeMessage(b []byte) (m message, err error) {
	dec := jsontext.NewDecoder(bytes.NewBuffer(b))
	if dec.PeekKind() != '{' {
		return m, errors.New("not an object")
	}
	err = jsonvalue.EachMember(dec, func(name string) (err error) {
		switch name {
		case "id":
			m.ID, err = nullOrString(dec)
		case "type":
			var t *string
			if t, err = nullOrString(dec); t != nil {
				m.Type = *t
			}
		case "payload":
			var v jsontext.Value
			if v, err = dec.ReadValue(); err == nil {
				end := dec.InputOffset() // v is valid until the next read; b's bytes stay
				m.Payload = b[end-int64(len(v)) : end : end]
			}
		default:
			err = dec.SkipValue()
		}
		return err
	})
	if err != nil {
		return m, err
	}
	return m, jsonvalue.AtEnd(dec)
}

// nullOrString reads a string, or null as nil; anything else is an error.
func nullOrString(dec *jsontext.Decoder) (*string, error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return nil, err
	case tok.Kind() == 'n':
		return nil, nil
	case tok.Kind() != '"':
		return nil, errors.New("not a string")
	}
	s := tok.String()
	return &s, nil
}
