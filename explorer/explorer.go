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
	"embed"
	"io/fs"
	"net/http"
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
