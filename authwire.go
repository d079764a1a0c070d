package main

import (
	"fmt"
	"log/slog"

	"github.com/hindsight-dev/hindsight/auth"
)

// newAuthenticator builds the access control cfg asks for and applies the
// safe default: with auth none, anyone who can reach the server may read and
// write everything, so it only listens on a loopback address unless the
// operator says --insecure, which is logged loudly.
func newAuthenticator(cfg *config, log *slog.Logger) (auth.Authenticator, error) {
	a, err := auth.New(auth.Config{Mode: cfg.Auth, APIKeysFile: cfg.APIKeysFile,
		JWTSecret: cfg.JWTSecret, JWTPublicKeyFile: cfg.JWTPublicKeyFile})
	if err != nil {
		return nil, usageError{err}
	}
	switch a := a.(type) {
	case auth.None:
		if !cfg.loopback() {
			if !cfg.Insecure {
				return nil, usageError{fmt.Errorf("refusing to listen on %s without access control: "+
					"set HINDSIGHT_AUTH=apikey or jwt, listen on a loopback address (127.0.0.1), "+
					"or pass --insecure (HINDSIGHT_INSECURE=true) if a proxy in front enforces access", cfg.Addr)}
			}
			log.Warn("INSECURE: access control is off (HINDSIGHT_AUTH=none) on a non-loopback address; "+
				"anyone who can reach this server can read, write and subscribe to every stream", "addr", cfg.Addr)
		}
	case *auth.APIKeys:
		log.Info("access control: API keys", "keys", a.Len(), "file", cfg.APIKeysFile)
	case *auth.JWT:
		how := "HS256 secret"
		if cfg.JWTPublicKeyFile != "" {
			how = "public key " + cfg.JWTPublicKeyFile
		}
		log.Info("access control: JWT", "verified_with", how)
	}
	if !cfg.introspectionOn() {
		log.Info("introspection and field suggestions are off", "introspection", cfg.Introspection)
	}
	return a, nil
}

// rateLimiter returns the per-principal limiter, or nil without a rate.
func rateLimiter(cfg *config) *auth.RateLimiter {
	if cfg.RateLimit <= 0 {
		return nil
	}
	return auth.NewRateLimiter(cfg.RateLimit, cfg.RateLimitBurst)
}

// storeKind describes the store for the diagnostics query.
func storeKind(cfg *config) string {
	switch {
	case cfg.MongoURI != "":
		return "mongodb"
	case cfg.PostgreSQLURL != "":
		return "embedded (FerretDB on PostgreSQL)"
	}
	return "embedded (FerretDB on SQLite)"
}
