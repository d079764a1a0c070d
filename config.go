package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/tlog"
)

// config is the configuration of `hindsight serve`. Every setting is a flag
// with a matching environment variable (HINDSIGHT_ plus the flag's name in
// upper snake case). Precedence: a flag given on the command line wins over
// the environment variable, which wins over the built-in default. Environment
// values are checked by the same parser as flags, so a bad value fails the
// start with a message naming the variable.
type config struct {
	Addr                    string
	MongoURI                string
	DataDir                 string
	PostgreSQLURL           string
	Database                string
	CORSOrigins             []string
	MemoryBudget            int64 // bytes; 0 = unlimited
	SubscriberMaxLag        int64
	MaxSubscriptionsPerConn int
	MaxConnections          int
	Streams                 graph.StreamLimits // pending per address, connections and subscriptions per principal (issue 16)
	MaxBodyBytes            int64
	MaxComplexity           int
	LogLevel                slog.Level
	LogFormat               string // auto, text or json

	// Access control and abuse limits (issue 7).
	Auth             string // none, apikey or jwt
	APIKeysFile      string
	JWTSecret        string
	JWTPublicKeyFile string
	Insecure         bool   // allow auth none on a non-loopback address
	Introspection    string // auto (on for a loopback address), on or off
	HeavyLowPriority bool   // heavy executions on a thread at nice 19 (graph/priority.go)
	MaxDepth         int
	MaxAliases       int
	MaxDirectives    int
	MaxTokens        int
	MaxFields        int
	AllowedHosts     []string // host names served under auth none besides loopback ones
	RateLimit        float64  // operations per second per principal; 0 = off
	RateLimitBurst   int      // 0 = max(1, RateLimit)
	SlowOperation    time.Duration
	ReadyMaxLag      int64

	DebugAddr string // net/http/pprof listener; empty = none

	// HeavyShare is the share of the heavy lane's time heavy work may take
	// while other operations wait for it (graph/lanerest.go).
	HeavyShare float64

	// The verifiable log (issue 17, package tlog).
	SigningKeyFile     string // empty: generated in the data directory on the embedded store
	CheckpointEvery    int
	CheckpointInterval time.Duration

	// Declarative projections (issue 19): limits of one reducer call.
	ProjectionReducerTimeout time.Duration
	ProjectionMaxStateBytes  int64
	ProjectionMemoryBudget   int64 // 0 = unlimited
}

// loopback reports whether the listen address only accepts local clients.
func (c *config) loopback() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// introspectionOn resolves Introspection: auto means on for a loopback
// address (development) and off otherwise.
func (c *config) introspectionOn() bool {
	switch c.Introspection {
	case "on":
		return true
	case "off":
		return false
	}
	return c.loopback()
}

// setting describes one flag and its environment variable, for parsing and
// for the README's configuration table.
type setting struct {
	name, def, usage string
	set              func(c *config, v string) error
}

func (s setting) env() string {
	return "HINDSIGHT_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

var serveSettings = []setting{
	{"addr", "127.0.0.1:8080", "listen address (host:port)", func(c *config, v string) error {
		if err := hostPort(v); err != nil {
			return err
		}
		c.Addr = v
		return nil
	}},
	{"mongodb-uri", "", "MongoDB URI (a replica set in production); empty = the embedded store in the data directory", func(c *config, v string) error {
		if v != "" && !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
			return errors.New("must start with mongodb:// or mongodb+srv://")
		}
		c.MongoURI = v
		return nil
	}},
	{"data-dir", "./data", "directory of the embedded store (used when the MongoDB URI is empty)", func(c *config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"postgresql-url", "", "run the embedded store on FerretDB's PostgreSQL handler with this URL (see embedded/pgstore.sh) instead of SQLite files in the data directory", func(c *config, v string) error {
		if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			return errors.New("must start with postgres://")
		}
		c.PostgreSQLURL = v
		return nil
	}},
	{"database", "hindsight", "database name", func(c *config, v string) error {
		if v == "" || strings.ContainsAny(v, `/\. "$`) || len(v) > 63 {
			return errors.New("must be 1 to 63 characters without / \\ . space \" $")
		}
		c.Database = v
		return nil
	}},
	{"cors-origins", "", `comma-separated origins allowed for CORS and websockets, e.g. https://app.example.com ("*" = any); same-origin pages and non-browser clients are always allowed`, func(c *config, v string) error {
		c.CORSOrigins = nil
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimRight(strings.TrimSpace(o), "/")
			if o == "" {
				continue
			}
			if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return fmt.Errorf("origin %q must start with http:// or https://", o)
			}
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
		return nil
	}},
	{"memory-budget", "1GiB", "memory budget of the memory image, e.g. 512MiB or 2GB; 0 = unlimited", func(c *config, v string) error {
		n, err := parseBytes(v)
		c.MemoryBudget = n
		return err
	}},
	{"subscriber-max-lag", strconv.Itoa(graph.DefaultSubscriberMaxLag), "positions a subscriber may fall behind before it is ended with SUBSCRIBER_TOO_SLOW; -1 = no limit", func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n == 0 || n < -1 {
			return errors.New("must be a positive integer or -1")
		}
		c.SubscriberMaxLag = n
		return nil
	}},
	{"max-subscriptions-per-conn", strconv.Itoa(graph.DefaultMaxSubscriptionsPerConn), "active subscriptions allowed on one websocket connection", func(c *config, v string) error {
		return positive(&c.MaxSubscriptionsPerConn, v)
	}},
	{"max-connections", strconv.Itoa(graph.DefaultMaxStreams), "concurrent websocket and SSE connections; more are refused with 503", func(c *config, v string) error {
		return positive(&c.MaxConnections, v)
	}},
	{"max-pending-per-addr", strconv.Itoa(graph.DefaultMaxPendingPerAddr), "websockets per client address that have not yet sent connection_init; more are refused with 429", func(c *config, v string) error {
		return positive(&c.Streams.MaxPendingPerAddr, v)
	}},
	{"max-connections-per-principal", strconv.Itoa(graph.DefaultMaxConnectionsPerPrincipal), "websockets and SSE streams per API key, JWT subject or (auth none) client address; a websocket over it is closed with 1013, an SSE stream refused with 429", func(c *config, v string) error {
		return positive(&c.Streams.MaxConnectionsPerPrincipal, v)
	}},
	{"max-subscriptions-per-principal", strconv.Itoa(graph.DefaultMaxSubscriptionsPerPrincipal), "active subscriptions per API key, JWT subject or (auth none) client address, over all its connections", func(c *config, v string) error {
		return positive(&c.Streams.MaxSubscriptionsPerPrincipal, v)
	}},
	{"max-body-bytes", "8MiB", "request body limit (also the websocket message limit); larger bodies get 413", func(c *config, v string) error {
		n, err := parseBytes(v)
		if err == nil && n < 64<<10 {
			err = errors.New("must be at least 64KiB")
		}
		c.MaxBodyBytes = n
		return err
	}},
	{"max-complexity", strconv.Itoa(graph.DefaultMaxComplexity), "gqlgen complexity limit of one operation (a connection costs first × (its fields + 5); Stream.verify over half the limit)", func(c *config, v string) error {
		return positive(&c.MaxComplexity, v)
	}},
	{"auth", "none", "access control: none, apikey (keys from the API keys file) or jwt (HS256 with the JWT secret, or RS256/ES256 with the public key file); with none the server only listens on a loopback address unless --insecure", func(c *config, v string) error {
		switch v {
		case "none", "apikey", "jwt":
			c.Auth = v
			return nil
		}
		return errors.New("must be none, apikey or jwt")
	}},
	{"api-keys-file", "", "file of API keys for auth apikey, one line per key: key role [stream-prefix ...]; role is reader, writer or admin", func(c *config, v string) error {
		c.APIKeysFile = v
		return nil
	}},
	{"jwt-secret", "", "HS256 secret (at least 32 bytes) for auth jwt; prefer the environment variable to the flag", func(c *config, v string) error {
		c.JWTSecret = v
		return nil
	}},
	{"jwt-public-key-file", "", "PEM public key (RSA for RS256, P-256 for ES256) for auth jwt", func(c *config, v string) error {
		c.JWTPublicKeyFile = v
		return nil
	}},
	{"insecure", "false", "allow auth none on a non-loopback address: anyone who can reach the server may read and write everything", func(c *config, v string) error {
		b, err := parseBool(v)
		c.Insecure = b
		return err
	}},
	{"heavy-low-priority", "true", "when other operations run or wait, execute heavy queries and mutations (complexity 1,000 or more) on a thread at nice 19, so that cheap requests get the cores first", func(c *config, v string) error {
		b, err := parseBool(v)
		c.HeavyLowPriority = b
		return err
	}},
	{"heavy-share", "0.33", "while operations wait for the heavy lane, the share of its time heavy work may take: after each heavy part the lane rests for (1 - share) / share as long, at most 50 ms, so that cheap requests find the cores free; 1 = no rest", func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return errors.New("must be a number > 0 and <= 1")
		}
		c.HeavyShare = f
		return nil
	}},
	{"introspection", "auto", "GraphQL introspection and field suggestions: auto (on for a loopback address), on or off", func(c *config, v string) error {
		switch v {
		case "auto", "on", "off":
			c.Introspection = v
			return nil
		case "true":
			c.Introspection = "on"
			return nil
		case "false":
			c.Introspection = "off"
			return nil
		}
		return errors.New("must be auto, on or off")
	}},
	{"max-depth", strconv.Itoa(graph.DefaultMaxDepth), "fields nested in one operation ({ a { b } } is 2)", func(c *config, v string) error {
		return positive(&c.MaxDepth, v)
	}},
	{"max-aliases", strconv.Itoa(graph.DefaultMaxAliases), "aliases in one operation, fragments counted where spread", func(c *config, v string) error {
		return positive(&c.MaxAliases, v)
	}},
	{"max-directives", strconv.Itoa(graph.DefaultMaxDirectives), "directives in one operation, fragments counted where spread", func(c *config, v string) error {
		return positive(&c.MaxDirectives, v)
	}},
	{"max-tokens", strconv.Itoa(graph.DefaultMaxTokens), "tokens in one GraphQL document", func(c *config, v string) error {
		return positive(&c.MaxTokens, v)
	}},
	{"max-fields", strconv.Itoa(graph.DefaultMaxFields), "fields in one GraphQL document, fragments counted where spread; bounds validation, whose cost grows with the square of same-named fields", func(c *config, v string) error {
		return positive(&c.MaxFields, v)
	}},
	{"allowed-hosts", "", `comma-separated host names (no port) served under auth none besides localhost, 127.0.0.1 and [::1] ("*" = any); other Host headers get 403, which stops DNS rebinding`, func(c *config, v string) error {
		c.AllowedHosts = nil
		for _, h := range strings.Split(v, ",") {
			h = strings.Trim(strings.TrimSpace(h), "[]")
			if h == "" {
				continue
			}
			if strings.ContainsAny(h, "/ ") || (strings.Count(h, ":") == 1) {
				return fmt.Errorf("host %q must be a bare host name or IP address, without scheme or port", h)
			}
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
		return nil
	}},
	{"rate-limit", "0", "operations per second per API key, JWT subject or (auth none) client address, as a token bucket; 0 = no limit", func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return errors.New("must be a number >= 0")
		}
		c.RateLimit = f
		return nil
	}},
	{"rate-limit-burst", "0", "operations a key may make at once before the rate applies; 0 = the rate, at least 1", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("must be an integer >= 0")
		}
		c.RateLimitBurst = n
		return nil
	}},
	{"slow-operation", "1s", "log GraphQL queries and mutations that take longer, with their request id; 0 = never", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a duration such as 500ms")
		}
		c.SlowOperation = d
		return nil
	}},
	{"ready-max-lag", "1000", "positions the projections may be behind the head before /readyz reports not ready", func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("must be an integer >= 0")
		}
		c.ReadyMaxLag = n
		return nil
	}},
	{"signing-key-file", "", "Ed25519 key that signs the log's checkpoints, in golang.org/x/mod/sumdb/note form (PRIVATE+KEY+name+hash+key; its name is the checkpoint origin). Empty: on the embedded store one is generated in the data directory (" + tlog.KeyFileName + ") on first start; on MongoDB no checkpoints are signed", func(c *config, v string) error {
		c.SigningKeyFile = v
		return nil
	}},
	{"checkpoint-every", "1000", "sign and store a checkpoint of the verifiable log after this many new events ...", func(c *config, v string) error {
		return positive(&c.CheckpointEvery, v)
	}},
	{"checkpoint-interval", "10s", "... or after this long with any new event, whichever comes first (and at shutdown)", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration such as 10s")
		}
		c.CheckpointInterval = d
		return nil
	}},
	{"debug-addr", "", "serve Go's profiler (net/http/pprof) on this separate address, e.g. 127.0.0.1:6060; empty = off. It has no access control: keep it on a loopback address", func(c *config, v string) error {
		if v != "" {
			if err := hostPort(v); err != nil {
				return err
			}
		}
		c.DebugAddr = v
		return nil
	}},
	{"projection-reducer-timeout", "100ms", "time limit of one declarative projection reducer call (one event); over it (three times in a row) the projection faults (PROJECTION_FAULTED)", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration such as 100ms")
		}
		c.ProjectionReducerTimeout = d
		return nil
	}},
	{"projection-max-state-bytes", "64KiB", "size limit of one declarative projection partition's state, as JSON; over it the projection faults (PROJECTION_FAULTED)", func(c *config, v string) error {
		n, err := parseBytes(v)
		if err == nil && (n < 1 || n > 16<<20) {
			err = errors.New("must be between 1 byte and 16MiB")
		}
		c.ProjectionMaxStateBytes = n
		return err
	}},
	{"projection-memory-budget", "256MiB", "memory of all declarative projections' states (every state of every partition, all versions); the version that would pass it faults (MEMORY_BUDGET); 0 = unlimited", func(c *config, v string) error {
		n, err := parseBytes(v)
		c.ProjectionMemoryBudget = n
		return err
	}},
	{"log-level", "info", "debug, info, warn or error", func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "debug":
			c.LogLevel = slog.LevelDebug
		case "info":
			c.LogLevel = slog.LevelInfo
		case "warn", "warning":
			c.LogLevel = slog.LevelWarn
		case "error":
			c.LogLevel = slog.LevelError
		default:
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	}},
	{"log-format", "auto", "auto (text on a terminal, JSON otherwise), text or json", func(c *config, v string) error {
		switch v {
		case "auto", "text", "json":
			c.LogFormat = v
			return nil
		}
		return errors.New("must be auto, text or json")
	}},
}

func settingNamed(name string) setting {
	for _, s := range serveSettings {
		if s.name == name {
			return s
		}
	}
	panic("no setting " + name)
}

// hostPort checks a listen address.
func hostPort(v string) error {
	host, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		return errors.New("must be host:port, such as 127.0.0.1:8080 or :8080")
	}
	return nil
}

func positive(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("must be a positive integer")
	}
	*dst = n
	return nil
}

// parseFlags parses args for a command with the given settings, filling in
// environment variables for flags not given and defaults for the rest. Every
// error is one sentence naming the flag or variable and what it accepts;
// -h and --help print the flags to stderr and return flag.ErrHelp.
func parseFlags(cmd string, settings []setting, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("hindsight "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in our words, by run
	var bad error            // the first invalid flag value, in our words
	for _, s := range settings {
		set := func(v string) error {
			if err := s.set(c, v); err != nil {
				bad = invalidSetting("--"+s.name, v, err)
				return bad
			}
			return nil
		}
		if s.def == "false" {
			// A switch: --insecure alone means true.
			fs.BoolFunc(s.name, s.usage, set)
			continue
		}
		fs.Func(s.name, s.usage, set)
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "Usage: hindsight %s [flags]\n\n", cmd)
		printFlags(stderr, settings)
		return nil, err
	case bad != nil:
		return nil, usageError{bad}
	case err != nil:
		return nil, usageError{flagError(err, cmd)}
	case fs.NArg() > 0:
		return nil, usageError{fmt.Errorf("unexpected argument %q; hindsight %s --help lists the flags", fs.Arg(0), cmd)}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		if given[s.name] {
			continue
		}
		v, from := s.def, "default"
		if e := getenv(s.env()); e != "" {
			v, from = e, s.env()
		}
		if err := s.set(c, v); err != nil {
			return nil, usageError{invalidSetting(from, v, err)}
		}
	}
	return c, nil
}

// invalidSetting is the error for a bad value: `invalid --log-level
// "verbose": must be debug, info, warn or error`.
func invalidSetting(name, value string, err error) error {
	return fmt.Errorf("invalid %s %q: %w", name, value, err)
}

// flagError rewords the flag package's own errors, which are about the
// command line's syntax rather than a value.
func flagError(err error, cmd string) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag %s; hindsight %s --help lists the flags", name, cmd)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("flag %s needs a value, as in %s=VALUE", name, name)
	}
	if arg, ok := strings.CutPrefix(msg, "bad flag syntax: "); ok {
		return fmt.Errorf("%q is not a flag; flags look like --name=value", arg)
	}
	return err
}

// printFlags lists settings with their variables and defaults, for --help.
func printFlags(w io.Writer, settings []setting) {
	for _, s := range settings {
		arg := " VALUE"
		if s.def == "false" {
			arg = ""
		}
		def := ""
		if s.def != "" {
			def = ", default " + s.def
		}
		fmt.Fprintf(w, "  --%s%s  (env %s%s)\n        %s\n", s.name, arg, s.env(), def, s.usage)
	}
}

// usageError makes run exit with code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseBytes parses a size: a number with an optional unit, B, KB/MB/GB/TB
// (powers of 1000), KiB/MiB/GiB/TiB (powers of 1024) or K/M/G/T and
// Ki/Mi/Gi/Ti as in Kubernetes. Case-insensitive.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("must be a size such as 512MiB or 2GB")
	}
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
		"gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("must be a size such as 512MiB or 2GB; the unit %q is none of B, KiB, MiB, GiB, TiB, KB, MB, GB or TB", unit)
	}
	if n > (1<<62)/mult {
		return 0, errors.New("must be a size below 4EiB")
	}
	return n * mult, nil
}

// newLogger returns a text logger on a terminal and a JSON logger otherwise,
// or as format says. Both write durations as Go duration strings ("1.5s",
// "250ms"): slog's JSON handler would write nanoseconds.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" || (format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// timeouts of the HTTP server. Websocket and SSE connections clear the read
// and write deadlines once upgraded (graph.Endpoint), because they live as
// long as the client wants; they are watched by ping/pong, keep-alives and a
// deadline per write instead.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second // a full 8 MiB body on a slow link
	writeTimeout      = 60 * time.Second // queries wait at most 5 s for projections
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 10 * time.Second // in-flight requests get this long
	closeTimeout      = 15 * time.Second // then projections, store, client and the embedded store
)
