package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/tlog"
)

// signingKey loads the checkpoint signing key: HINDSIGHT_SIGNING_KEY_FILE,
// or on the embedded store a key generated in the data directory on first
// start (named hindsight/<database>/<random>, which becomes the checkpoint
// origin). On MongoDB without a key file it returns nil: instances share
// the key, so it must come from the operator.
func signingKey(cfg *config, log *slog.Logger) (*tlog.Key, error) {
	var key *tlog.Key
	switch {
	case cfg.SigningKeyFile != "":
		k, err := tlog.LoadKey(cfg.SigningKeyFile)
		if err != nil {
			return nil, usageError{err}
		}
		key = k
	case cfg.MongoURI == "":
		var b [4]byte
		_, _ = rand.Read(b[:])
		path := filepath.Join(cfg.DataDir, tlog.KeyFileName)
		k, generated, err := tlog.LoadOrGenerateKey(path, "hindsight/"+cfg.Database+"/"+hex.EncodeToString(b[:]))
		if err != nil {
			return nil, err
		}
		if generated {
			log.Warn("generated a checkpoint signing key; back it up, and keep the verifier key elsewhere", "file", path)
		}
		key = k
	default:
		log.Warn("no checkpoint signing key (HINDSIGHT_SIGNING_KEY_FILE): the Merkle tree and its proofs are served, but no checkpoint is signed")
		return nil, nil
	}
	log.Info("checkpoints are signed", "origin", key.Origin(), "verifier_key", key.VerifierKey)
	return key, nil
}

// newVerifiableLog builds the verifiable log and the store options that feed it.
func newVerifiableLog(cfg *config, log *slog.Logger) (*tlog.Log, []eventstore.Option, error) {
	key, err := signingKey(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	lg := tlog.New(tlog.Config{Key: key, Every: int64(cfg.CheckpointEvery), Interval: cfg.CheckpointInterval,
		Logger: log.With("component", "tlog")})
	return lg, []eventstore.Option{eventstore.WithCommitObserver(lg.Observe), eventstore.WithAppendReceipt(lg.Receipt)}, nil
}

// startVerifiableLog checks the log against its stored checkpoints once the
// store has built its image, then starts signing. Until then /readyz says the
// log is being checked; a failure is retried.
func startVerifiableLog(ctx context.Context, lg *tlog.Log, store *eventstore.Store, db *mongo.Database, log *slog.Logger) {
	go func() {
		if store.WaitReady(ctx) != nil {
			return
		}
		for ctx.Err() == nil {
			err := lg.Start(ctx, db)
			if err == nil {
				return
			}
			log.Warn("could not check the verifiable log; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
}

// tlogNotReady is /readyz's reason while the verifiable log is not checked
// or disagrees with its checkpoints, naming the positions; "" when ready.
func tlogNotReady(lg *tlog.Log) string {
	switch {
	case lg == nil:
		return ""
	case lg.Fault() != nil:
		return "the log disagrees with its signed checkpoints: " + lg.Fault().Error()
	case !lg.Checked():
		return "checking the log against its signed checkpoints"
	}
	return ""
}

// checkpoint serves the latest signed checkpoint as a tlog does: text/plain,
// the signed note.
func (a *app) checkpoint(w http.ResponseWriter, r *http.Request) {
	comp := a.wired.Load()
	var cp *tlog.Checkpoint
	if comp != nil {
		cp = comp.tlog.Latest()
	}
	if cp == nil {
		http.Error(w, "no checkpoint has been signed yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(cp.Note)
}

// verifierKey serves the key that verifies the checkpoints.
func (a *app) verifierKey(w http.ResponseWriter, r *http.Request) {
	comp := a.wired.Load()
	if comp == nil || comp.tlog.Key() == nil {
		http.Error(w, "checkpoints are not signed", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(comp.tlog.Key().VerifierKey + "\n"))
}

// tlogCollector exports the verifiable log's state to /metrics.
type tlogCollector struct{ a *app }

var (
	descTreeSize   = prometheus.NewDesc("hindsight_tlog_tree_size", "Events in the verifiable log's Merkle tree.", nil, nil)
	descTreeBytes  = prometheus.NewDesc("hindsight_tlog_tree_bytes", "Memory of the Merkle tree's hashes.", nil, nil)
	descCheckpoint = prometheus.NewDesc("hindsight_tlog_checkpoint_size", "Tree size of the latest signed checkpoint; 0 = none.", nil, nil)
	descFault      = prometheus.NewDesc("hindsight_tlog_fault", "1 when the log disagrees with its signed checkpoints (see /readyz).", nil, nil)
)

func (tlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTreeSize, descTreeBytes, descCheckpoint, descFault} {
		ch <- d
	}
}

func (c tlogCollector) Collect(ch chan<- prometheus.Metric) {
	comp := c.a.wired.Load()
	if comp == nil || comp.tlog == nil {
		return
	}
	lg := comp.tlog
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descTreeSize, float64(lg.Tree().Size()))
	gauge(descTreeBytes, float64(lg.Tree().Bytes()))
	var size, fault float64
	if cp := lg.Latest(); cp != nil {
		size = float64(cp.Size)
	}
	if lg.Fault() != nil {
		fault = 1
	}
	gauge(descCheckpoint, size)
	gauge(descFault, fault)
}
