// Package explorer serves the time-travel explorer, a small web page embedded
// in the binary: plain HTML, CSS and ES modules, no build step.
//
// The page (static/) talks to /graphql only: fetch for queries, and its own
// graphql-transport-ws client (static/js/ws.js) on the browser's WebSocket
// for subscriptions, reconnecting with backoff and resuming from the last
// position or version it saw. It never reads a whole stream: the global log
// is read newest first in windows of positions below headPosition, a
// stream's revision costs one request (the event at v and the state at v and
// v-1), and tick labels and "jump to time" read single events by version.
// e2e/browser_test.go drives it in Chromium.
package explorer

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// Handler serves the explorer's files; mount it under /explorer/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/explorer/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Embedded files have no modification time, so there is nothing to
		// revalidate against: make browsers ask again after a new build.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

// linkHTML is what WithLink adds to a page: a fixed link to the explorer.
const linkHTML = `<a href="/explorer/" id="hindsight-explorer-link" style="position:fixed;right:16px;bottom:16px;z-index:10000;` +
	`padding:6px 12px;border-radius:4px;background:#1d4ed8;color:#fff;font:600 14px system-ui,sans-serif;text-decoration:none">` +
	`Time-travel explorer</a>`

// WithLink wraps an HTML page handler (GraphiQL: gqlgen's
// playground.Handler has no hook for this) and adds a link to the explorer
// before </body>. Other answers pass through unchanged.
func WithLink(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if strings.HasPrefix(rec.header.Get("Content-Type"), "text/html") {
			if i := bytes.LastIndex(body, []byte("</body>")); i >= 0 {
				body = append(body[:i:i], append([]byte(linkHTML), body[i:]...)...)
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
