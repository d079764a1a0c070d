package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/hindsight-dev/hindsight/tlog"
)

// witness is the auditor of a Hindsight server's verifiable log, as the
// witnesses of transparency logs and immudb's auditor are: it fetches the
// latest checkpoint on an interval, checks its signature, and checks a
// consistency proof from the last checkpoint it trusted (kept in --state)
// before trusting the new one. A log that was rewritten, cut or forked can
// no longer prove consistency with what the witness saw: the witness then
// logs an error and exits with code 1. The first checkpoint is trusted on
// first use.
//
//	hindsight witness --url http://host:8080 --state witness.checkpoint --verifier-key KEY
func witnessCmd(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	w := &witness{}
	var verifierKey string
	cfg, err := parseFlags("witness", []setting{
		{"url", "", "base URL of the Hindsight server (required)", func(_ *config, v string) error { w.url = strings.TrimRight(v, "/"); return nil }},
		{"state", "", "file that keeps the last checkpoint the witness trusted (required)", func(_ *config, v string) error { w.state = v; return nil }},
		verifierKeySetting(&verifierKey),
		{"interval", "30s", "how often to fetch the checkpoint", func(_ *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("must be a positive duration")
			}
			w.interval = d
			return nil
		}},
		{"once", "false", "check once and exit", func(_ *config, v string) error {
			b, err := parseBool(v)
			w.once = b
			return err
		}},
		{"authorization", "", "Authorization header for the server's GraphQL endpoint, e.g. \"Bearer KEY\"", func(_ *config, v string) error { w.auth = v; return nil }},
		settingNamed("log-level"), settingNamed("log-format"),
	}, args, func(k string) string {
		switch k {
		case "HINDSIGHT_AUTHORIZATION", "HINDSIGHT_LOG_LEVEL", "HINDSIGHT_LOG_FORMAT":
			return getenv(k)
		}
		return "" // the rest are the witness's own flags, not variables of serve
	}, stderr)
	if err != nil {
		return err
	}
	if w.url == "" || w.state == "" || verifierKey == "" {
		return usageError{errors.New("witness needs --url, --state and --verifier-key")}
	}
	if w.verifier, err = parseVerifier(verifierKey); err != nil {
		return usageError{err}
	}
	w.log = newLogger(stderr, cfg.LogFormat, cfg.LogLevel).With("component", "witness", "url", w.url)
	w.client = &http.Client{Timeout: 30 * time.Second}
	return w.run(ctx)
}

type witness struct {
	url, state, auth string
	verifier         note.Verifier
	interval         time.Duration
	once             bool
	log              *slog.Logger
	client           *http.Client
}

// errInconsistent marks what the witness must fail loudly on, as opposed to
// a server that could not be reached (retried on the next round).
var errInconsistent = errors.New("the log is NOT consistent with the checkpoint the witness trusted")

func (w *witness) run(ctx context.Context) error {
	for {
		err := w.check(ctx)
		switch {
		case errors.Is(err, errInconsistent):
			w.log.Error("WITNESS: the log was rewritten, cut or forked", "err", err)
			return err
		case err != nil && w.once:
			return err
		case err != nil:
			w.log.Warn("could not check the log; retrying", "err", err)
		}
		if w.once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.interval):
		}
	}
}

// check fetches the latest checkpoint and trusts it if it is consistent with
// the last one trusted.
func (w *witness) check(ctx context.Context) error {
	body, err := w.get(ctx, w.url+"/checkpoint")
	if err != nil {
		return err
	}
	cp, err := tlog.OpenCheckpoint(body, w.verifier)
	if err != nil {
		return fmt.Errorf("%w: the served checkpoint: %v", errInconsistent, err)
	}
	old, err := w.trusted()
	if err != nil {
		return err
	}
	switch {
	case old == nil:
		w.log.Info("trusting the first checkpoint seen", "tree_size", cp.Size, "root", hex.EncodeToString(cp.Root))
		return w.keep(cp)
	case cp.Size < old.Size:
		return fmt.Errorf("%w: the served tree has %d events, fewer than the %d already witnessed (positions %d to %d are gone)",
			errInconsistent, cp.Size, old.Size, cp.Size+1, old.Size)
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Root, old.Root) {
			return fmt.Errorf("%w: two different roots for tree size %d (a fork)", errInconsistent, cp.Size)
		}
		return nil
	}
	hashes, err := w.consistency(ctx, old.Size, cp.Size)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, hashes, old.Root, cp.Root); err != nil {
		why := err.Error()
		if errors.As(err, new(proof.RootMismatchError)) {
			why = fmt.Sprintf("it does not connect the witnessed root %x to the served root %x", old.Root, cp.Root)
		}
		return fmt.Errorf("%w: consistency proof from %d to %d: %s: some of positions 1 to %d changed", errInconsistent, old.Size, cp.Size, why, old.Size)
	}
	w.log.Info("checkpoint consistent with the last one witnessed", "from", old.Size, "tree_size", cp.Size, "root", hex.EncodeToString(cp.Root))
	return w.keep(cp)
}

// trusted reads the state file; nil when there is none yet.
func (w *witness) trusted() (*tlog.Checkpoint, error) {
	b, err := os.ReadFile(w.state)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cp, err := tlog.OpenCheckpoint(b, w.verifier)
	if err != nil {
		return nil, fmt.Errorf("the state file %s: %w", w.state, err)
	}
	return cp, nil
}

// keep writes the checkpoint to the state file atomically.
func (w *witness) keep(cp *tlog.Checkpoint) error {
	tmp, err := os.CreateTemp(filepath.Dir(w.state), ".witness-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(cp.Note); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), w.state)
}

func (w *witness) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// consistency asks the server's GraphQL API for a consistency proof.
func (w *witness) consistency(ctx context.Context, from, to uint64) ([][]byte, error) {
	q, _ := json.Marshal(map[string]any{
		"query":     `query($from: Position!, $to: Position!) { consistencyProof(fromSize: $from, toSize: $to) { hashes } }`,
		"variables": map[string]any{"from": strconv.FormatUint(from, 10), "to": strconv.FormatUint(to, 10)},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/graphql", bytes.NewReader(q))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if w.auth != "" {
		req.Header.Set("Authorization", w.auth)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data *struct {
			ConsistencyProof struct{ Hashes []string } `json:"consistencyProof"`
		} `json:"data"`
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("consistency proof: %s: %w", resp.Status, err)
	}
	if len(out.Errors) > 0 || out.Data == nil {
		msg := resp.Status
		if len(out.Errors) > 0 {
			msg = out.Errors[0].Message
		}
		return nil, fmt.Errorf("consistency proof from %d to %d: %s", from, to, msg)
	}
	hashes := make([][]byte, len(out.Data.ConsistencyProof.Hashes))
	for i, h := range out.Data.ConsistencyProof.Hashes {
		if hashes[i], err = hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("consistency proof: %w", err)
		}
	}
	return hashes, nil
}
