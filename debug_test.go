package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestDebugListener(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if addr, err := startDebug(context.Background(), "", log); addr != nil || err != nil {
		t.Fatalf("off: %v, %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := startDebug(ctx, "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, error) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if code, body, err := get("/debug/pprof/goroutine?debug=1"); err != nil || code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.80q %v", code, body, err)
	}
	if code, _, err := get("/graphql"); err != nil || code != http.StatusNotFound {
		t.Fatalf("the API must not be served on the debug address: %d %v", code, err)
	}
	cancel()
	for i := 0; ; i++ { // Close runs after ctx ends, asynchronously
		if _, _, err := get("/debug/pprof/"); err != nil {
			break
		}
		if i == 1000 {
			t.Fatal("the debug listener still serves after its context ended")
		}
	}
}
