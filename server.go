// Command hindsight is an event-sourced GraphQL server: every mutation becomes
// an immutable event in MongoDB, every query can answer "as it was" at any
// point in time, and every change is pushed live through subscriptions.
//
//	hindsight [serve] [flags]   serve the API (the default command)
//	hindsight devdb [flags]     run the embedded store alone, for several serve processes
//	hindsight export|import|verify   backups (backup.go)
//	hindsight version           print the version (also --version)
//	hindsight help              list the commands and the flags (also --help)
//
// See README.md for the configuration and config.go for how flags and
// environment variables combine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hindsight-dev/hindsight/auth"
	"github.com/hindsight-dev/hindsight/embedded"
	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/graph"
	"github.com/hindsight-dev/hindsight/projections"
	"github.com/hindsight-dev/hindsight/tlog"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or VCS revision from the build info is shown.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err and maps it to the process exit code: 0 for success
// (including a shutdown on SIGINT/SIGTERM), 2 for usage errors, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "hindsight:", err)
		return 2
	}
	fmt.Fprintln(stderr, "hindsight:", err)
	return 1
}

// run runs one command until it finishes or ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			cmd, args = "help", args[1:]
		case "-version", "--version":
			cmd, args = "version", args[1:]
		default:
			if !strings.HasPrefix(args[0], "-") {
				cmd, args = args[0], args[1:]
			}
		}
	}
	switch cmd {
	case "serve":
		cfg, err := parseFlags("serve", serveSettings, args, getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, newLogger(stderr, cfg.LogFormat, cfg.LogLevel))
	case "devdb":
		return devdb(ctx, args, getenv, stdout, stderr)
	case "export":
		return export(ctx, args, getenv, stderr)
	case "import":
		return importCmd(ctx, args, getenv, stderr)
	case "verify":
		return verify(ctx, args, getenv, stdout, stderr)
	case "witness":
		return witnessCmd(ctx, args, getenv, stderr)
	case "version":
		fmt.Fprintln(stdout, "hindsight", versionString())
		return nil
	case "help":
		printUsage(stdout)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q; hindsight --help lists the commands", cmd)}
}

// commands is the first part of --help; each command's flags are shown by
// hindsight COMMAND --help.
const commands = `Hindsight is an event-sourced GraphQL server: every mutation becomes an
immutable event, every query can answer as of any point in time, and
subscriptions push every change.

Usage:
  hindsight [serve] [flags]              serve the GraphQL API (the default command)
  hindsight devdb [flags]                run the embedded store alone and print its mongodb:// URI
  hindsight export --out FILE [--gzip]   write every event to FILE as JSON Lines in position order, ending
                                         with a trailer: count, tree size, root hash, signed checkpoint
  hindsight import --in FILE             load an export into an empty store; checks the trailer, every hash
                                         chain and the Merkle root before it writes (--allow-unsigned)
  hindsight verify [--checkpoint FILE]   check every hash chain, the Merkle tree and every stored checkpoint;
                                         exit code 1 on a break, naming the first bad position
  hindsight witness --url URL --state FILE --verifier-key KEY
                                         audit a server's checkpoints; exit code 1 on an inconsistency
  hindsight version                      print the version and VCS revision (also --version)
  hindsight help                         print this help (also --help, -h)

hindsight COMMAND --help lists a command's flags.
`

// printUsage prints the commands and the flags of serve.
func printUsage(w io.Writer) {
	fmt.Fprint(w, commands)
	fmt.Fprint(w, "\nFlags of serve; each is also an environment variable, and a flag wins over its variable:\n")
	printFlags(w, serveSettings)
}

// versionString is the version with the VCS revision and the Go version,
// e.g. "v1.2.0 (3f9c0d2e8b7a) go1.26.8" or "devel (3f9c0d2e8b7a-dirty) go1.26.8".
// go build stamps the revision when it builds in a git clone (not with
// -buildvcs=false, nor in a git worktree, whose .git is a file).
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	return versionOf(version, bi, ok)
}

func versionOf(version string, bi *debug.BuildInfo, ok bool) string {
	v := version
	if v == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	if ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (" + rev + dirty + ")"
		}
		v += " " + bi.GoVersion
	}
	return v
}

// devdb runs the embedded store standalone, so that several serve processes
// can share it: hindsight devdb --addr 127.0.0.1:27017 --data-dir DIR.
func devdb(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var addr string
	settings := []setting{
		{"addr", "127.0.0.1:27017", "listen address of the store", func(_ *config, v string) error {
			if err := hostPort(v); err != nil {
				return err
			}
			addr = v
			return nil
		}},
		settingNamed("data-dir"), // HINDSIGHT_DATA_DIR, as for serve
		settingNamed("postgresql-url"),
		settingNamed("log-level"),
		settingNamed("log-format"),
	}
	// devdb's --addr is not HINDSIGHT_ADDR (that is the HTTP address).
	getenvDevdb := func(k string) string {
		if k == "HINDSIGHT_ADDR" {
			return ""
		}
		return getenv(k)
	}
	cfg, err := parseFlags("devdb", settings, args, getenvDevdb, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	srv, err := embedded.Start(ctx, embedded.Config{Dir: cfg.DataDir, Addr: addr, Logger: log, PostgreSQLURL: cfg.PostgreSQLURL})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, srv.URI())
	log.Info("embedded store running; stop with Ctrl-C", "uri", srv.URI(), "data_dir", cfg.DataDir,
		"use", "HINDSIGHT_MONGODB_URI="+srv.URI())
	<-ctx.Done()
	log.Info("stopping the embedded store")
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return srv.Close(cctx)
}

// app holds the wired components once the store is open; until then the HTTP
// server answers /healthz and reports /readyz as starting.
type app struct {
	log   *slog.Logger
	cfg   *config
	m     *serverMetrics
	authn auth.Authenticator
	wired atomic.Pointer[components]
}

type components struct {
	store    *eventstore.Store
	proj     *projections.Service
	endpoint *graph.Endpoint
	tlog     *tlog.Log
}

// serve runs the server: it listens first (so /healthz answers and a taken
// port fails fast), then starts the embedded store if no URI is set, opens
// the event store (retrying while the store is unreachable), the projections
// and the GraphQL endpoint, and serves until ctx ends. Then it shuts down in
// order: HTTP (in-flight requests get 10 s; websockets are closed with 1001
// and SSE streams completed), projections, the event store (its writer
// finishes appends already sent), the client, the embedded store.
func serve(ctx context.Context, cfg *config, log *slog.Logger) error {
	a := &app{log: log, cfg: cfg, m: newServerMetrics()}
	log.Info("starting hindsight", "version", versionString(), "addr", cfg.Addr,
		"memory_budget_bytes", cfg.MemoryBudget, "cors_origins", cfg.CORSOrigins)
	authn, err := newAuthenticator(cfg, log)
	if err != nil {
		return err
	}
	a.authn = authn
	if _, err := startDebug(ctx, cfg.DebugAddr, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Hijacked connections (websockets) are not waited for by Shutdown, and
	// SSE streams never finish on their own: end both at the start of
	// Shutdown.
	httpSrv.RegisterOnShutdown(func() {
		if c := a.wired.Load(); c != nil {
			c.endpoint.CloseStreams()
		}
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	closers, err := a.open(ctx)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i].close(cctx); err != nil {
				log.Warn("shutdown: close "+closers[i].name, "err", err)
			}
		}
		log.Info("hindsight stopped")
	}()
	if err != nil {
		_ = httpSrv.Close()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}

	store := "embedded (" + cfg.DataDir + ")"
	if cfg.PostgreSQLURL != "" {
		store = "embedded on PostgreSQL (" + redactURI(cfg.PostgreSQLURL) + ")"
	}
	if cfg.MongoURI != "" {
		store = redactURI(cfg.MongoURI)
	}
	log.Info("hindsight is serving", "url", "http://"+ln.Addr().String()+"/", "graphql", "http://"+ln.Addr().String()+"/graphql",
		"store", store, "database", cfg.Database)

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: requests still running after the timeout; closing them", "err", err)
		_ = httpSrv.Close()
	}
	if c := a.wired.Load(); c != nil {
		if err := c.endpoint.Shutdown(sctx); err != nil {
			log.Warn("shutdown: streams", "err", err)
		}
	}
	return nil
}

type closer struct {
	name  string
	close func(context.Context) error
}

// open starts what serve needs, returning closers in start order for what is
// already open, also on error.
func (a *app) open(ctx context.Context) ([]closer, error) {
	cfg, log := a.cfg, a.log
	var closers []closer
	uri := cfg.MongoURI
	if uri == "" {
		srv, err := embedded.Start(ctx, embedded.Config{Dir: cfg.DataDir, PostgreSQLURL: cfg.PostgreSQLURL,
			Logger: log.With("component", "embedded")})
		if err != nil {
			return closers, err
		}
		closers = append(closers, closer{"embedded store", srv.Close})
		uri = srv.URI()
	}

	// Short timeouts, so that an outage fails requests fast with
	// STORE_UNAVAILABLE while the process keeps running and reconnects.
	clientOpts := options.Client().ApplyURI(uri).
		SetAppName("hindsight").
		SetServerSelectionTimeout(2 * time.Second).
		SetConnectTimeout(2 * time.Second)
	client, err := mongo.Connect(clientOpts)
	if err != nil {
		return closers, fmt.Errorf("mongodb client: %w", err)
	}
	closers = append(closers, closer{"mongodb client", client.Disconnect})

	lg, tlogOpts, err := newVerifiableLog(cfg, log)
	if err != nil {
		return closers, err
	}
	// Closed after the store, so that its last checkpoint covers every append.
	closers = append(closers, closer{"verifiable log", lg.Close})

	var store *eventstore.Store
	for attempt := 1; ; attempt++ {
		store, err = eventstore.Open(ctx, client, cfg.Database, append(tlogOpts, eventstore.WithLogger(log.With("component", "eventstore")),
			eventstore.WithBatchObserver(a.m.observeBatch), eventstore.WithMemoryBudget(cfg.MemoryBudget),
			eventstore.WithWriteConcern(clientOpts.WriteConcern))...)
		if err == nil {
			break
		}
		if !errors.Is(err, eventstore.ErrStoreUnavailable) || ctx.Err() != nil {
			return closers, fmt.Errorf("open event store: %w", err)
		}
		log.Warn("the store is unreachable; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return closers, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	closers = append(closers, closer{"event store", store.Close})
	a.m.watchStore(store)
	startVerifiableLog(ctx, lg, store, client.Database(cfg.Database), log.With("component", "tlog"))

	proj, err := projections.New(store, projections.Options{Logger: log.With("component", "projections"),
		ReducerTimeout: cfg.ProjectionReducerTimeout, MaxStateBytes: int(cfg.ProjectionMaxStateBytes),
		ProjectionMemoryBudget: projectionBudget(cfg.ProjectionMemoryBudget)})
	if err != nil {
		return closers, fmt.Errorf("open projections: %w", err)
	}
	if err := proj.Open(ctx); err != nil {
		return closers, fmt.Errorf("open projections: %w", err)
	}
	closers = append(closers, closer{"projections", proj.Close})

	endpoint := graph.NewEndpoint(graph.EndpointConfig{
		Resolver: &graph.Resolver{
			Store: store, Projections: proj, TLog: lg, Log: log.With("component", "graphql"),
			Limits:   graph.Limits{SubscriberMaxLag: cfg.SubscriberMaxLag},
			Observer: a.m.observer(log.With("component", "graphql"), cfg.SlowOperation),
			Build:    graph.BuildInfo{Version: versionString(), StoreKind: storeKind(cfg)},
		},
		Log:                     log.With("component", "graphql"),
		AllowedOrigins:          cfg.CORSOrigins,
		MaxBodyBytes:            cfg.MaxBodyBytes,
		MaxComplexity:           cfg.MaxComplexity,
		MaxSubscriptionsPerConn: cfg.MaxSubscriptionsPerConn,
		MaxStreams:              cfg.MaxConnections,
		Streams:                 cfg.Streams,
		MaxTokens:               cfg.MaxTokens,
		MaxFields:               cfg.MaxFields,
		AllowedHosts:            cfg.AllowedHosts,
		MaxDepth:                cfg.MaxDepth,
		MaxAliases:              cfg.MaxAliases,
		MaxDirectives:           cfg.MaxDirectives,
		Auth:                    a.authn,
		RateLimiter:             rateLimiter(cfg),
		DisableIntrospection:    !cfg.introspectionOn(),
		HeavyAtNormalPriority:   !cfg.HeavyLowPriority,
		HeavyShare:              cfg.HeavyShare,
	})
	a.wired.Store(&components{store: store, proj: proj, endpoint: endpoint, tlog: lg})
	return closers, nil
}

// redactURI hides the password of a MongoDB URI for logs.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}
