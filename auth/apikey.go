package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// APIKeys is mode apikey: a fixed set of keys, each with a role and optional
// stream prefixes.
type APIKeys struct {
	keys []apiKey
}

type apiKey struct {
	digest    [sha256.Size]byte
	principal *Principal
}

// LoadAPIKeys reads an API keys file: one key per line,
//
//	<key> <role> [<stream-prefix> ...]
//
// separated by spaces or tabs. Blank lines and lines starting with # are
// ignored. Keys must be unique and at least 16 characters long. Errors name
// the line, never the key.
func LoadAPIKeys(path string) (*APIKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("api keys file: %w", err)
	}
	defer f.Close()
	return ParseAPIKeys(f)
}

// MinKeyLength is the shortest API key accepted.
const MinKeyLength = 16

// ParseAPIKeys parses the format of LoadAPIKeys.
func ParseAPIKeys(r io.Reader) (*APIKeys, error) {
	a := &APIKeys{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 2 {
			return nil, fmt.Errorf("api keys file, line %d: want <key> <role> [<stream-prefix> ...]", line)
		}
		if len(f[0]) < MinKeyLength {
			return nil, fmt.Errorf("api keys file, line %d: the key is shorter than %d characters", line, MinKeyLength)
		}
		role, err := ParseRole(f[1])
		if err != nil {
			return nil, fmt.Errorf("api keys file, line %d: %w", line, err)
		}
		d := sha256.Sum256([]byte(f[0]))
		if prev, dup := seen[d]; dup {
			return nil, fmt.Errorf("api keys file, line %d: the same key as line %d", line, prev)
		}
		seen[d] = line
		a.keys = append(a.keys, apiKey{digest: d, principal: &Principal{
			Subject:  "key:" + hex.EncodeToString(d[:6]),
			Role:     role,
			Prefixes: f[2:],
		}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api keys file: %w", err)
	}
	if len(a.keys) == 0 {
		return nil, fmt.Errorf("api keys file: no keys")
	}
	return a, nil
}

// Len returns the number of keys.
func (a *APIKeys) Len() int { return len(a.keys) }

// Authenticate finds the key. It compares the credential's digest with every
// key's digest in constant time and without stopping at a match, so the time
// taken says nothing about which key matched or how close a guess was.
func (a *APIKeys) Authenticate(_ context.Context, credential string) (*Principal, error) {
	if credential == "" {
		return nil, ErrUnauthenticated
	}
	d := sha256.Sum256([]byte(credential))
	var found *Principal
	for i := range a.keys {
		if subtle.ConstantTimeCompare(d[:], a.keys[i].digest[:]) == 1 {
			found = a.keys[i].principal
		}
	}
	if found == nil {
		return nil, ErrUnauthenticated
	}
	return found, nil
}

// Required is true.
func (a *APIKeys) Required() bool { return true }
