package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// Backups: export, import and verify. Each opens the store the server would
// (the embedded one in the data directory, or HINDSIGHT_MONGODB_URI). The
// embedded store's files must not be in use by a running server; to back up
// a live embedded store, run it with `hindsight devdb` and point both at it.
//
// The export format is JSON Lines, one event per line in position order,
// with every stored field:
//
//	{"position":1,"streamId":"cart-1","version":1,"id":"0192…","type":"ItemAdded",
//	 "data":{"sku":"a"},"metadata":{"by":"x"},"recordedAt":"2026-11-23T10:00:00.123456789Z","hash":"9f86…"}
//
// The last line is a trailer that commits to every line before it: the event
// count, the Merkle tree's size and root and a signed checkpoint of them (see
// backupfile.go); import checks the whole file against it before it writes
// anything, and refuses a file without one unless --allow-unsigned.
//
// metadata is left out when the event has none. data and metadata are the
// stored JSON bytes, unchanged (HTML characters are not escaped), because
// the hash chain covers those bytes. The same log always exports to the same
// bytes, so a restored store exports to a file identical to the original.

// exportLine is one line of an export.
type exportLine struct {
	Position   int64           `json:"position"`
	StreamID   string          `json:"streamId"`
	Version    int64           `json:"version"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RecordedAt string          `json:"recordedAt"`
	Hash       string          `json:"hash"`
}

// storeSettings are the settings of the backup commands that select the
// store, as for serve.
func storeSettings(extra ...setting) []setting {
	return append([]setting{
		settingNamed("mongodb-uri"), settingNamed("data-dir"), settingNamed("postgresql-url"),
		settingNamed("database"), settingNamed("log-level"), settingNamed("log-format"),
	}, extra...)
}

// backupBuildAttempts is how often export, import and verify try to read
// the log before they give up.
const backupBuildAttempts = 3

// openStore opens the event store for a command and waits for its memory
// image; close releases everything it opened.
func openStore(ctx context.Context, cfg *config, log *slog.Logger) (store *eventstore.Store, close func(), err error) {
	var closers []func(context.Context) error
	close = func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i](cctx)
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	uri := cfg.MongoURI
	if uri == "" {
		srv, err := embedded.Start(ctx, embedded.Config{Dir: cfg.DataDir, PostgreSQLURL: cfg.PostgreSQLURL,
			Logger: log.With("component", "embedded")})
		if err != nil {
			return nil, close, err
		}
		closers = append(closers, srv.Close)
		uri = srv.URI()
	}
	clientOpts := options.Client().ApplyURI(uri).SetAppName("hindsight-backup").
		SetServerSelectionTimeout(10 * time.Second)
	client, err := mongo.Connect(clientOpts)
	if err != nil {
		return nil, close, fmt.Errorf("mongodb client: %w", err)
	}
	closers = append(closers, client.Disconnect)
	// A command must end: after a few failed attempts to read the log it
	// exits non-zero with the cause, instead of retrying as a server does.
	store, err = eventstore.Open(ctx, client, cfg.Database, eventstore.WithLogger(log.With("component", "eventstore")),
		eventstore.WithBuildAttempts(backupBuildAttempts), eventstore.WithWriteConcern(clientOpts.WriteConcern))
	if err != nil {
		return nil, close, fmt.Errorf("open event store: %w", err)
	}
	closers = append(closers, store.Close)
	if err := store.WaitReady(ctx); err != nil {
		return nil, close, fmt.Errorf("load event store: %w", err)
	}
	return store, close, nil
}

// export writes the whole log to --out as JSON Lines, gzip-compressed with
// --gzip. It writes to a temporary file next to --out and renames it at the
// end, so --out is either complete or untouched.
func export(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var out string
	var gz bool
	cfg, err := parseFlags("export", storeSettings(settingNamed("signing-key-file"),
		setting{"out", "", "file to write (required); - for standard output", func(_ *config, v string) error { out = v; return nil }},
		setting{"gzip", "false", "compress the file with gzip", func(_ *config, v string) error {
			b, err := parseBool(v)
			gz = b
			return err
		}},
	), args, noEnv("out", "gzip", getenv), stderr)
	if err != nil {
		return err
	}
	if out == "" {
		return usageError{errors.New("export needs --out FILE")}
	}
	key, err := existingSigningKey(cfg)
	if err != nil {
		return err
	}
	if key == nil {
		fmt.Fprintln(stderr, "export: WARNING: no signing key (HINDSIGHT_SIGNING_KEY_FILE): the trailer gets no signed checkpoint, and import will need --allow-unsigned")
	}
	log := newLogger(stderr, cfg.LogFormat, max(cfg.LogLevel, slog.LevelWarn))
	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()

	var w io.Writer = os.Stdout
	var tmp *os.File
	if out != "-" {
		tmp, err = os.CreateTemp(filepath.Dir(out), ".hindsight-export-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // after the rename, a no-op
		defer tmp.Close()
		w = tmp
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var zw *gzip.Writer
	sink := io.Writer(bw)
	if gz {
		zw = gzip.NewWriter(bw) // no name or time in the header: the same log gives the same bytes
		sink = zw
	}
	n, err := exportTo(ctx, store, sink, newProgress(stderr, "export", store.HeadPosition()), key)
	if err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "exported %d events to %s\n", n, out)
	return nil
}

// exportTo writes every event in position order, then the trailer, signed
// with key when it is not nil and the log agrees with its stored
// checkpoints.
func exportTo(ctx context.Context, store *eventstore.Store, w io.Writer, p *progress, key *tlog.Key) (int64, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // data must stay byte for byte what the hash covers
	tree := tlog.NewTree()
	var n, after int64
	for {
		events, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil {
			return n, err
		}
		for i, e := range events {
			if err := enc.Encode(exportLine{
				Position: e.Position, StreamID: e.StreamID, Version: e.Version, ID: e.ID, Type: e.Type,
				Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano), Hash: e.Hash,
			}); err != nil {
				return n, fmt.Errorf("position %d: %w", e.Position, err)
			}
			tree.Append(tlog.LeafHash(&events[i]))
			n++
		}
		p.update(n)
		if len(events) == 0 { // a short page is not the end: pages are bounded by bytes too
			break
		}
		after = events[len(events)-1].Position
	}
	size, root := tree.Root()
	tr := trailer{Events: n, TreeSize: int64(size), RootHash: hex.EncodeToString(root)}
	if key != nil {
		// Never sign a log that disagrees with its own checkpoints: the
		// signature would launder the tampering.
		stored, fault, err := tlog.LoadCheckpoints(ctx, store.Database().Collection(tlog.CheckpointsCollection), key.Verifier)
		if err != nil {
			return n, fmt.Errorf("read checkpoints: %w", err)
		}
		if _, f := tlog.CheckAgainst(tree, stored); fault == nil {
			fault = f
		}
		if fault != nil {
			return n, fmt.Errorf("the log disagrees with its signed checkpoints (%v): refusing to sign it; see hindsight verify", fault)
		}
		cp, err := tlog.Sign(key, size, root)
		if err != nil {
			return n, err
		}
		tr.Checkpoint = string(cp.Note)
	}
	if err := enc.Encode(trailerLine{&tr}); err != nil {
		return n, err
	}
	p.done(n)
	return n, nil
}

// importCmd loads an export into an empty store. It reads the file twice:
// first to check it whole (positions, hash chains, the Merkle root against
// the trailer and its signed checkpoint) without writing anything, then to
// import it. Standard input is spooled to a temporary file for that. Memory
// stays bounded whatever the file's size (see checkExport).
func importCmd(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var in, verifierKey string
	var allowUnsigned bool
	cfg, err := parseFlags("import", storeSettings(settingNamed("signing-key-file"), verifierKeySetting(&verifierKey),
		setting{"in", "", "file to read (required); - for standard input", func(_ *config, v string) error { in = v; return nil }},
		setting{"allow-unsigned", "false", "import a file without a trailer or without a verifiable signed checkpoint (says what it skips)", func(_ *config, v string) error {
			b, err := parseBool(v)
			allowUnsigned = b
			return err
		}},
	), args, noEnv("in", "allow-unsigned", getenv), stderr)
	if err != nil {
		return err
	}
	if in == "" {
		return usageError{errors.New("import needs --in FILE")}
	}
	signer, verifier, err := keysFor(cfg, verifierKey)
	if err != nil {
		return err
	}
	f, err := openImportFile(in)
	if err != nil {
		return err
	}
	defer f.close()
	fc, err := checkExport(f.f, verifier, allowUnsigned)
	if err != nil {
		return fmt.Errorf("import: %s is refused, nothing was written: %w", in, err)
	}
	if fc.unsigned != "" {
		fmt.Fprintf(stderr, "import: WARNING (--allow-unsigned): %s\n", fc.unsigned)
	}
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, max(cfg.LogLevel, slog.LevelWarn))
	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	if h := store.HeadPosition(); h != 0 {
		return fmt.Errorf("import: the store (database %q) already holds %d events; import only into an empty store", cfg.Database, h)
	}
	cr := &countingReader{r: f.f}
	n, err := importFrom(ctx, store, cr, newProgress(stderr, "import", f.size), func() int64 { return cr.n })
	if err != nil {
		return fmt.Errorf("import stopped after %d events (they are stored; start again with an empty store): %w", n, err)
	}
	if n != fc.events {
		return fmt.Errorf("import: the file changed while it was read: %d events checked, %d imported", fc.events, n)
	}
	if fc.signed != nil && signer != nil && signedBy(fc.signed, signer) {
		// Signed by this store's own key (a restore where it was made): the
		// checkpoint carries over, so the log's history stays witnessed.
		if err := tlog.SaveCheckpoint(ctx, store.Database().Collection(tlog.CheckpointsCollection), fc.signed); err != nil {
			return fmt.Errorf("import: store the trailer's checkpoint: %w", err)
		}
	}
	fmt.Fprintf(stderr, "imported %d events from %s; every hash chain verified; Merkle root %x", n, in, fc.root)
	if fc.unsigned == "" {
		fmt.Fprint(stderr, " matches the trailer's signed checkpoint")
	}
	fmt.Fprintln(stderr)
	return nil
}

// importFile is the file import reads twice.
type importFile struct {
	f     *os.File
	size  int64
	close func()
}

// openImportFile opens path, or spools standard input to a temporary file
// for "-".
func openImportFile(path string) (*importFile, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		return &importFile{f: f, size: size, close: func() { f.Close() }}, nil
	}
	tmp, err := os.CreateTemp("", "hindsight-import-*")
	if err != nil {
		return nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	size, err := io.Copy(tmp, os.Stdin)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	return &importFile{f: tmp, size: size, close: cleanup}, nil
}

// importFrom reads an export (plain or gzip) and imports its events in
// pages; the store checks positions and hash chains again as it writes.
// The progress counts bytes of the file when its size is known.
func importFrom(ctx context.Context, store *eventstore.Store, r io.Reader, p *progress, readBytes func() int64) (int64, error) {
	var n int64
	batch := make([]eventstore.Event, 0, eventstore.MaxReadLimit)
	flush := func() error {
		if err := store.Import(ctx, batch); err != nil {
			return err
		}
		n += int64(len(batch))
		batch = batch[:0]
		if readBytes != nil && p.total > 0 {
			p.update(readBytes())
		} else {
			p.update(n)
		}
		return nil
	}
	_, err := scanExport(r, func(_ int64, e eventstore.Event) error {
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	if p.total > 0 && readBytes != nil {
		p.done(p.total)
	} else {
		p.done(n)
	}
	return n, nil
}

// verify checks the log in one pass over it: every stream's hash chain, the
// positions, and the Merkle tree recomputed from every event against every
// stored checkpoint and the one given with --checkpoint (a copy kept
// elsewhere, e.g. by a witness). It reports the first bad position and fails
// (exit code 1) if anything disagrees.
func verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cpFile, verifierKey string
	cfg, err := parseFlags("verify", storeSettings(settingNamed("signing-key-file"), verifierKeySetting(&verifierKey),
		setting{"checkpoint", "", "also check the log against this signed checkpoint file (e.g. a witness's copy)", func(_ *config, v string) error { cpFile = v; return nil }},
	), args, noEnv("checkpoint", "verifier-key", getenv), stderr)
	if err != nil {
		return err
	}
	_, verifier, err := keysFor(cfg, verifierKey)
	if err != nil {
		return err
	}
	var given *tlog.Checkpoint
	if cpFile != "" {
		if verifier == nil {
			return usageError{errors.New("--checkpoint needs the key that verifies it: --verifier-key or the signing key")}
		}
		b, err := os.ReadFile(cpFile)
		if err != nil {
			return err
		}
		if given, err = tlog.OpenCheckpoint(b, verifier); err != nil {
			return fmt.Errorf("verify: %s: %w", cpFile, err)
		}
	}
	log := newLogger(stderr, cfg.LogFormat, max(cfg.LogLevel, slog.LevelWarn))
	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	tree := tlog.NewTree()
	n, streams, chainErr := verifyLog(ctx, store, tree, newProgress(stderr, "verify", store.HeadPosition()))
	if chainErr != nil && !errors.Is(chainErr, eventstore.ErrInvalidArgument) && !errors.As(chainErr, new(*gapError)) {
		return chainErr // the store failed, not the log
	}
	stored, fault, err := tlog.LoadCheckpoints(ctx, store.Database().Collection(tlog.CheckpointsCollection), verifier)
	if err != nil {
		return fmt.Errorf("verify: read checkpoints: %w", err)
	}
	cps := stored
	if given != nil {
		cps = append(append([]*tlog.Checkpoint(nil), stored...), given)
		sort.SliceStable(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	}
	checked := 0
	if fault == nil {
		checked, fault = tlog.CheckAgainst(tree, cps)
	}
	if chainErr != nil || fault != nil {
		fmt.Fprintf(stdout, "BROKEN: %s\n", firstBad(chainErr, fault))
		if chainErr != nil {
			fmt.Fprintf(stdout, "  hash chains: %v\n", chainErr)
		}
		if fault != nil {
			fmt.Fprintf(stdout, "  Merkle tree: %v\n", fault)
		}
		return fmt.Errorf("verify: the log is broken (%d events checked before the first break)", n)
	}
	size, root := tree.Root()
	fmt.Fprintf(stdout, "ok: %d events in %d streams, every hash chain intact\n", n, streams)
	fmt.Fprintf(stdout, "ok: Merkle tree of %d events, root %x, matches %d of %d checkpoints", size, root, checked, len(cps))
	if verifier == nil {
		fmt.Fprint(stdout, " (signatures NOT checked: no key; give --verifier-key)")
	}
	fmt.Fprintln(stdout)
	if len(cps) > 0 && cps[len(cps)-1].Size < size {
		fmt.Fprintf(stdout, "note: events %d to %d are covered by no checkpoint yet\n", cps[len(cps)-1].Size+1, size)
	}
	return nil
}

// gapError: positions are missing from the log.
type gapError struct{ from, to int64 }

func (e *gapError) Error() string {
	return fmt.Sprintf("positions %d to %d are missing from the log", e.from, e.to)
}

// firstBad names the first bad position of what the chains and the tree found.
func firstBad(chainErr error, fault *tlog.Fault) string {
	pos := int64(0)
	var ge *gapError
	var be *brokenError
	switch {
	case errors.As(chainErr, &ge):
		pos = ge.from
	case errors.As(chainErr, &be):
		pos = be.position
	}
	if fault != nil && (pos == 0 || fault.From < pos) {
		pos = fault.From
	}
	return fmt.Sprintf("first bad position %d", pos)
}

// brokenError is a break of a hash chain at a position.
type brokenError struct {
	position int64
	err      error
}

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// verifyLog reads the memory image, which Open just built with one
// sequential read of the store, so it checks what is stored. It checks the
// hash chains up to the first break, and adds every event's leaf to tree up
// to the first gap in positions (after it the leaves would be misplaced).
func verifyLog(ctx context.Context, store *eventstore.Store, tree *tlog.Tree, p *progress) (events int64, streams int, err error) {
	chain := eventstore.NewChainVerifier()
	var after int64
	var broken error
	for {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil {
			return events, chain.Streams(), err
		}
		if len(page) == 0 { // a short page is not the end: pages are bounded by bytes too
			p.done(after)
			return events, chain.Streams(), broken
		}
		for i := range page {
			if page[i].Position != after+1 {
				if broken == nil {
					broken = &gapError{after + 1, page[i].Position - 1}
				}
				return events, chain.Streams(), broken
			}
			if broken == nil {
				if err := chain.Check(&page[i]); err != nil {
					broken = &brokenError{page[i].Position, err}
				} else {
					events++
				}
			}
			tree.Append(tlog.LeafHash(&page[i]))
			after = page[i].Position
		}
		p.update(after)
	}
}

// noEnv hides the environment variables of command-specific flags such as
// --out (HINDSIGHT_OUT would be a surprise).
func noEnv(a, b string, getenv func(string) string) func(string) string {
	hidden := map[string]bool{setting{name: a}.env(): true}
	if b != "" {
		hidden[setting{name: b}.env()] = true
	}
	return func(k string) string {
		if hidden[k] {
			return ""
		}
		return getenv(k)
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "t", "true", "yes", "on":
		return true, nil
	case "0", "f", "false", "no", "off", "":
		return false, nil
	}
	return false, errors.New("must be true or false")
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress draws a progress bar on a terminal (redrawn at most 10 times a
// second) and a line every 2 seconds otherwise.
type progress struct {
	w     io.Writer
	what  string
	total int64 // 0 = unknown
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, what string, total int64) *progress {
	now := time.Now()
	return &progress{w: w, what: what, total: total, tty: isTerminal(w), start: now, last: now}
}

func (p *progress) update(n int64) {
	every := 2 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	p.draw(n, false)
}

func (p *progress) done(n int64) { p.draw(n, true) }

func (p *progress) draw(n int64, final bool) {
	line := fmt.Sprintf("%s: %d", p.what, n)
	if p.total > 0 {
		frac := min(1, float64(n)/float64(p.total))
		const width = 30
		fill := int(frac * width)
		line = fmt.Sprintf("%s: [%s%s] %3.0f%% %d/%d", p.what, strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100, n, p.total)
	}
	if secs := time.Since(p.start).Seconds(); secs > 0 {
		line += fmt.Sprintf(" (%.0f/s)", float64(n)/secs)
	}
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r%s\n", line)
	case p.tty:
		fmt.Fprintf(p.w, "\r%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}
