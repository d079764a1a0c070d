package explorer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandlerServesThePage(t *testing.T) {
	h := Handler()
	for path, want := range map[string]string{
		"/explorer/":                `<script type="module" src="app.js">`,
		"/explorer/app.js":          "import",
		"/explorer/js/ws.js":        "graphql-transport-ws",
		"/explorer/style.css":       ":root",
		"/explorer/js/stream.js":    "export function mount",
		"/explorer/js/dashboard.js": "orderStatsSeries",
		"/explorer/js/log.js":       "headPosition",
		"/explorer/js/auth.js":      "sessionStorage",
		"/explorer/js/api.js":       "Authorization",
		"/explorer/js/chart.js":     "svg",
		"/explorer/js/jsontree.js":  "details",
		"/explorer/js/diff.js":      "export function diff",
		"/explorer/js/format.js":    "export function",
		"/explorer/js/dom.js":       "export function h",
		"/explorer/js/proof.js":     "export async function rootFromInclusion",
	} {
		res, body := get(t, h, path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q", path, res.StatusCode, want)
		}
		ct := res.Header.Get("Content-Type")
		switch {
		case strings.HasSuffix(path, ".js") && !strings.HasPrefix(ct, "text/javascript"):
			t.Errorf("GET %s: Content-Type %q; ES modules need a JavaScript type", path, ct)
		case strings.HasSuffix(path, ".css") && !strings.HasPrefix(ct, "text/css"):
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	if res, _ := get(t, h, "/explorer/nope.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing file: %d", res.StatusCode)
	}
}
