package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/hindsight-dev/hindsight/eventstore"
	"github.com/hindsight-dev/hindsight/internal/storetest"
	"github.com/hindsight-dev/hindsight/projections"
)

// TestReadyzSaysWhy: /readyz is not 200 over a log with missing positions,
// nor while the memory image keeps failing to build, and its reason says
// what is wrong and what to do.
func TestReadyzSaysWhy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range []struct {
		name   string
		doc    bson.D // a commit document written by hand, as a damaged store holds it
		status int
		reason string
	}{
		{name: "a sound log", status: http.StatusOK},
		{name: "positions missing", status: http.StatusServiceUnavailable, reason: "positions 2 to 9 are missing from the log",
			doc: bson.D{{Key: "_id", Value: int64(10)}, {Key: "stream", Value: "b"}, {Key: "version", Value: int64(1)},
				{Key: "lastPosition", Value: int64(10)}, {Key: "recordedAt", Value: time.Now()}, {Key: "recordedAtNs", Value: time.Now().UnixNano()},
				{Key: "events", Value: bson.A{bson.D{{Key: "id", Value: "0192f0c4-0000-7000-8000-000000000001"},
					{Key: "type", Value: "B"}, {Key: "data", Value: "1"}, {Key: "hash", Value: "x"}}}}}},
		{name: "the image fails to build", status: http.StatusServiceUnavailable, reason: "building the memory image failed",
			doc: bson.D{{Key: "_id", Value: int64(2)}, {Key: "stream", Value: "b"}, {Key: "version", Value: int64(1)},
				{Key: "lastPosition", Value: int64(2)}, {Key: "events", Value: "broken"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mc, db := storetest.Client(t)
			w := storetest.Store(t, mc, db)
			if _, err := w.Append(ctx, "a", nil, eventstore.NewEvent{Type: "A", Data: json.RawMessage(`1`)}); err != nil {
				t.Fatal(err)
			}
			if c.doc != nil {
				if _, err := mc.Database(db).Collection(eventstore.CommitsCollection).InsertOne(ctx, c.doc); err != nil {
					t.Fatal(err)
				}
			}
			s, err := eventstore.Open(ctx, mc, db, eventstore.WithLogger(discard))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			proj, err := projections.New(s, projections.Options{Logger: discard})
			if err != nil {
				t.Fatal(err)
			}
			wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
			defer wcancel()
			if err := s.WaitReady(wctx); err == nil {
				if err := proj.Open(ctx); err != nil {
					t.Fatal(err)
				}
				defer proj.Close(context.Background())
			}
			a := &app{log: discard, cfg: &config{ReadyMaxLag: 1000}}
			a.wired.Store(&components{store: s, proj: proj})
			rec := httptest.NewRecorder()
			a.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			var body struct{ Reason string }
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != c.status || !strings.Contains(body.Reason, c.reason) {
				t.Fatalf("/readyz = %d %s; want %d with a reason saying %q", rec.Code, rec.Body, c.status, c.reason)
			}
		})
	}
}
