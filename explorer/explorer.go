// Package explorer serves the time-travel explorer, a small web page embedded
// in the binary: plain HTML, CSS and ES modules, no build step.
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
	return http.StripPrefix("/explorer/", http.FileServerFS(sub))
}
