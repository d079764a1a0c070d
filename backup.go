package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
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
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("hindsight-backup").
		SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		return nil, close, fmt.Errorf("mongodb client: %w", err)
	}
	closers = append(closers, client.Disconnect)
	// A command must end: after a few failed attempts to read the log it
	// exits non-zero with the cause, instead of retrying as a server does.
	store, err = eventstore.Open(ctx, client, cfg.Database, eventstore.WithLogger(log.With("component", "eventstore")),
		eventstore.WithBuildAttempts(backupBuildAttempts))
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
	cfg, err := parseFlags("export", storeSettings(
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
	n, err := exportTo(ctx, store, sink, newProgress(stderr, "export", store.HeadPosition()))
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

// exportTo writes every event in position order.
func exportTo(ctx context.Context, store *eventstore.Store, w io.Writer, p *progress) (int64, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // data must stay byte for byte what the hash covers
	var n, after int64
	for {
		events, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil {
			return n, err
		}
		for _, e := range events {
			if err := enc.Encode(exportLine{
				Position: e.Position, StreamID: e.StreamID, Version: e.Version, ID: e.ID, Type: e.Type,
				Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC().Format(time.RFC3339Nano), Hash: e.Hash,
			}); err != nil {
				return n, fmt.Errorf("position %d: %w", e.Position, err)
			}
			n++
		}
		p.update(n)
		if len(events) < eventstore.MaxReadLimit {
			p.done(n)
			return n, nil
		}
		after = events[len(events)-1].Position
	}
}

// importCmd loads an export into an empty store, verifying every hash chain
// as it goes. A gzip file is recognised by its magic bytes.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var in string
	cfg, err := parseFlags("import", storeSettings(
		setting{"in", "", "file to read (required); - for standard input", func(_ *config, v string) error { in = v; return nil }},
	), args, noEnv("in", "", getenv), stderr)
	if err != nil {
		return err
	}
	if in == "" {
		return usageError{errors.New("import needs --in FILE")}
	}
	var r io.Reader = os.Stdin
	var size int64
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		r = f
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
	cr := &countingReader{r: r}
	n, err := importFrom(ctx, store, cr, newProgress(stderr, "import", size), func() int64 { return cr.n })
	if err != nil {
		return fmt.Errorf("import stopped after %d events (they are stored; start again with an empty store): %w", n, err)
	}
	fmt.Fprintf(stderr, "imported %d events from %s; every hash chain verified\n", n, in)
	return nil
}

// importFrom reads JSON Lines (plain or gzip) and imports them in pages.
// The progress counts bytes of the file when its size is known.
func importFrom(ctx context.Context, store *eventstore.Store, r io.Reader, p *progress, readBytes func() int64) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, err
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
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
	for line := int64(1); ; line++ {
		var l exportLine
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("event %d of the file: %w", line, err)
		}
		at, err := time.Parse(time.RFC3339Nano, l.RecordedAt)
		if err != nil {
			return n, fmt.Errorf("event %d of the file: recordedAt: %w", line, err)
		}
		var meta json.RawMessage
		if len(l.Metadata) > 0 && string(l.Metadata) != "null" {
			meta = l.Metadata
		}
		batch = append(batch, eventstore.Event{ID: l.ID, StreamID: l.StreamID, Version: l.Version, Position: l.Position,
			Type: l.Type, Data: l.Data, Metadata: meta, RecordedAt: at.UTC(), Hash: l.Hash})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
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

// verify checks every stream's hash chain in one pass over the log, and
// fails (exit code 1) at the first break.
func verify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags("verify", storeSettings(), args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, max(cfg.LogLevel, slog.LevelWarn))
	store, closeStore, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	n, streams, err := verifyLog(ctx, store, newProgress(stderr, "verify", store.HeadPosition()))
	if err != nil {
		return fmt.Errorf("verify: BROKEN after %d good events: %w", n, err)
	}
	fmt.Fprintf(stdout, "ok: %d events in %d streams, every hash chain intact\n", n, streams)
	return nil
}

// verifyLog reads the memory image, which Open just built with one
// sequential read of the store, so it checks what is stored.
func verifyLog(ctx context.Context, store *eventstore.Store, p *progress) (events int64, streams int, err error) {
	chain := eventstore.NewChainVerifier()
	var after int64
	for {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: eventstore.MaxReadLimit})
		if err != nil {
			return events, chain.Streams(), err
		}
		for i := range page {
			if page[i].Position != after+1 {
				return events, chain.Streams(), fmt.Errorf("positions %d to %d are missing from the log", after+1, page[i].Position-1)
			}
			if err := chain.Check(&page[i]); err != nil {
				return events, chain.Streams(), err
			}
			after = page[i].Position
			events++
		}
		p.update(events)
		if len(page) < eventstore.MaxReadLimit {
			p.done(events)
			return events, chain.Streams(), nil
		}
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
	return false, fmt.Errorf("%q is not a boolean", v)
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
