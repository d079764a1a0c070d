package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/tlog"
)

// Keys of the backup commands and of verify: the signing key is the one
// serve uses (HINDSIGHT_SIGNING_KEY_FILE, or the key generated in the data
// directory of the embedded store; never generated here), and the verifier
// is --verifier-key when given, else the signing key's.

// verifierKeySetting is --verifier-key: a verifier key, or a file holding one.
func verifierKeySetting(dst *string) setting {
	return setting{"verifier-key", "", "key that verifies checkpoints (name+hash+key, or a file holding it); default: the signing key's", func(_ *config, v string) error {
		*dst = v
		return nil
	}}
}

// existingSigningKey loads the signing key serve would use, or nil if there
// is none.
func existingSigningKey(cfg *config) (*tlog.Key, error) {
	switch {
	case cfg.SigningKeyFile != "":
		return tlog.LoadKey(cfg.SigningKeyFile)
	case cfg.MongoURI == "":
		k, err := tlog.LoadKey(filepath.Join(cfg.DataDir, tlog.KeyFileName))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return k, err
	}
	return nil, nil
}

// parseVerifier reads a verifier key given as text or as a file.
func parseVerifier(v string) (note.Verifier, error) {
	if b, err := os.ReadFile(v); err == nil {
		v = string(b)
	}
	vk, err := note.NewVerifier(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	return vk, nil
}

// keysFor returns the signing key (nil if none) and the verifier.
func keysFor(cfg *config, verifierKey string) (*tlog.Key, note.Verifier, error) {
	signer, err := existingSigningKey(cfg)
	if err != nil {
		return nil, nil, err
	}
	if verifierKey != "" {
		v, err := parseVerifier(verifierKey)
		return signer, v, err
	}
	if signer != nil {
		return signer, signer.Verifier, nil
	}
	return nil, nil, nil
}

// signedBy reports whether the checkpoint verifies with the key's verifier.
func signedBy(cp *tlog.Checkpoint, k *tlog.Key) bool {
	_, err := tlog.OpenCheckpoint(cp.Note, k.Verifier)
	return err == nil
}
