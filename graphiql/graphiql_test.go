package graphiql

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", Page("/graphql"))
	mux.Handle("GET "+Prefix, Assets())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:8080"
	mux.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestPageLoadsOnlyFromThisServer: every script and stylesheet of the page
// is an embedded file served here, and the Content-Security-Policy allows
// no other host.
func TestPageLoadsOnlyFromThisServer(t *testing.T) {
	res, page := serve(t, "/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	want := map[string]string{
		"/graphiql/react@18.2.0/react.production.min.js":         "text/javascript",
		"/graphiql/react-dom@18.2.0/react-dom.production.min.js": "text/javascript",
		"/graphiql/graphiql@4.1.2/graphiql.min.js":               "text/javascript",
		"/graphiql/graphiql@4.1.2/graphiql.min.css":              "text/css",
		"/graphiql/start.js":                                     "text/javascript",
	}
	seen := map[string]bool{}
	for _, m := range refs {
		ref := m[1]
		switch {
		case ref == "data:," || ref == "/explorer/":
			continue
		case want[ref] == "":
			t.Errorf("the page loads %q, which is not one of the embedded files", ref)
			continue
		}
		seen[ref] = true
		res, body := serve(t, ref)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), want[ref]) || len(body) < 100 {
			t.Errorf("GET %s: %d %s, %d bytes", ref, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
		immutable := strings.Contains(ref, "@")
		if got := strings.Contains(res.Header.Get("Cache-Control"), "immutable"); got != immutable {
			t.Errorf("GET %s: Cache-Control %q", ref, res.Header.Get("Cache-Control"))
		}
	}
	if len(seen) != len(want) {
		t.Errorf("the page loads %v, want all of %v", seen, want)
	}
	if !strings.Contains(page, `href="/explorer/"`) || !strings.Contains(page, `data-endpoint="/graphql"`) {
		t.Errorf("the page lacks the explorer link or the endpoint:\n%s", page)
	}
}

// TestAssetsAreVendoredWithLicences: each package directory holds its
// licence and the versions named in the package documentation.
func TestAssetsAreVendoredWithLicences(t *testing.T) {
	for dir, names := range map[string][]string{
		"assets/graphiql@" + GraphiQLVersion: {"LICENSE", "graphiql.min.js", "graphiql.min.css"},
		"assets/react@" + ReactVersion:       {"LICENSE", "react.production.min.js"},
		"assets/react-dom@" + ReactVersion:   {"LICENSE", "react-dom.production.min.js"},
	} {
		for _, f := range names {
			b, err := fs.ReadFile(files, dir+"/"+f)
			if err != nil {
				t.Errorf("%s/%s: %v", dir, f, err)
				continue
			}
			if f == "LICENSE" && !strings.Contains(string(b), "MIT License") {
				t.Errorf("%s/LICENSE is not the MIT licence", dir)
			}
		}
	}
	entries, err := fs.ReadDir(files, "assets")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 { // three packages and start.js: no stale versions
		t.Errorf("assets/ holds %d entries, want 4", len(entries))
	}
	for _, path := range []string{"/graphiql/", "/graphiql/graphiql@4.1.2/", "/graphiql/nope.js"} {
		if res, _ := serve(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
}
