package explorer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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

func TestWithLink(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		_, _ = io.WriteString(w, "<html><body><div id=graphiql></div></body></html>")
	})
	res, body := get(t, WithLink(page), "/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/explorer/"`) || !strings.HasSuffix(body, "</body></html>") {
		t.Errorf("WithLink: %d %q", res.StatusCode, body)
	}
	if res.Header.Get("Content-Length") != "" && res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %s for %d bytes", res.Header.Get("Content-Length"), len(body))
	}

	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, `{"a":"</body>"}`)
	})
	res, body = get(t, WithLink(plain), "/")
	if res.StatusCode != http.StatusTeapot || body != `{"a":"</body>"}` {
		t.Errorf("WithLink changed a non-HTML answer: %d %q", res.StatusCode, body)
	}
}
