package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Keys are Ed25519 keys in golang.org/x/mod/sumdb/note's text form, as Go's
// checksum database and the C2SP signed-note spec use them:
//
//	signing key:  PRIVATE+KEY+<name>+<key hash>+<base64 key>
//	verifier key: <name>+<key hash>+<base64 key>
//
// The key's name is the log's origin: the first line of every checkpoint.

// KeyFileName is the file the embedded store keeps its generated signing key
// in, inside the data directory.
const KeyFileName = "checkpoint-signing.key"

// Key is a signing key with its verifier key.
type Key struct {
	Signer   note.Signer
	Verifier note.Verifier
	// VerifierKey is the public key in text form, for witnesses and for
	// anyone who checks a checkpoint.
	VerifierKey string
}

// Origin is the key's name, the first line of its checkpoints.
func (k *Key) Origin() string { return k.Signer.Name() }

// ParseKey reads a signing key in note's text form and derives its verifier
// key. The key's last field is base64 of the algorithm byte (1 = Ed25519)
// followed by the 32-byte Ed25519 seed, as the signed-note format defines.
func ParseKey(skey string) (*Key, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	// PRIVATE+KEY+<name>+<hash>+<key>: the name has no '+', base64 may.
	parts := strings.SplitN(strings.TrimPrefix(skey, "PRIVATE+KEY+"), "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("malformed signing key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 signing key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: signer, Verifier: verifier, VerifierKey: vkey}, nil
}

// LoadKey reads a signing key from path.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrGenerateKey reads the signing key at path, or, when there is no
// file, generates one named origin and writes it there (mode 0600) first.
func LoadOrGenerateKey(path, origin string) (k *Key, generated bool, err error) {
	if _, err := os.Stat(path); err == nil {
		k, err := LoadKey(path)
		return k, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("signing key: %w", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, false, fmt.Errorf("generate signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	// O_EXCL: two processes starting at once must not overwrite each
	// other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadKey(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("write signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	k, err = ParseKey(skey)
	return k, true, err
}
