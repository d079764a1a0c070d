// Package graphiql serves GraphiQL, the in-browser GraphQL IDE, from files
// embedded in the binary, so that the page at / works offline and behind
// proxies that block CDNs: nothing is loaded from another host (the page's
// Content-Security-Policy says so, and e2e/graphiql.test.mjs checks it with
// every other host blocked).
//
// assets/ holds the npm packages' prebuilt browser bundles at pinned
// versions, byte for byte as published, each with its licence (MIT):
//
//	graphiql@4.1.2    graphiql.min.js (UMD; includes the graphql-ws client), graphiql.min.css
//	react@18.2.0      umd/react.production.min.js
//	react-dom@18.2.0  umd/react-dom.production.min.js
//
// These are the versions gqlgen's playground loads from jsDelivr. To move to
// newer ones, fetch the packages with npm's own client and copy the same
// files into a directory named for the new version:
//
//	cd "$(mktemp -d)" && npm pack graphiql@X react@Y react-dom@Y
//	for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
//	# graphiql-X/package/{graphiql.min.js,graphiql.min.css,LICENSE} -> assets/graphiql@X/
//	# react-Y/package/{umd/react.production.min.js,LICENSE}         -> assets/react@Y/
//	# react-dom-Y/package/{umd/react-dom.production.min.js,LICENSE} -> assets/react-dom@Y/
//
// then change the versions below and in the package test, and delete the
// old directories. React 19 has no UMD builds; graphiql 5 needs a bundler.
// page.html and start.js are ours: a bar with the link to the explorer above
// GraphiQL (so that it covers nothing), and GraphiQL started on /graphql
// with its websocket for subscriptions.
package graphiql

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// Versions of the embedded packages; they name the asset directories.
const (
	GraphiQLVersion = "4.1.2"
	ReactVersion    = "18.2.0"
)

// Prefix is where the assets are served; mount Assets there.
const Prefix = "/graphiql/"

//go:embed assets page.html
var files embed.FS

var page = template.Must(template.ParseFS(files, "page.html"))

// Page serves GraphiQL's HTML page for the GraphQL endpoint at endpoint (a
// path on the same host, such as /graphql).
func Page(endpoint string) http.Handler {
	var buf bytes.Buffer
	err := page.Execute(&buf, map[string]string{
		"Endpoint": endpoint,
		"GraphiQL": Prefix + "graphiql@" + GraphiQLVersion + "/",
		"React":    Prefix + "react@" + ReactVersion + "/",
		"ReactDOM": Prefix + "react-dom@" + ReactVersion + "/",
		"Start":    Prefix + "start.js",
	})
	if err != nil {
		panic(err) // the template and its data are fixed at build time
	}
	body := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp(r))
		_, _ = w.Write(body)
	})
}

// csp allows this host only. GraphiQL sets inline styles and embeds its
// fonts and icons as data: URLs; connect-src names the websocket URL
// because not every browser counts ws: to the same host as 'self'.
func csp(r *http.Request) string {
	host := strings.NewReplacer(";", "", " ", "", ",", "").Replace(r.Host)
	return "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
		"font-src 'self' data:; connect-src 'self' ws://" + host + " wss://" + host + "; frame-ancestors 'none'; base-uri 'none'"
}

// Assets serves the embedded files under Prefix. Their paths carry the
// package versions, so browsers may keep them for good.
func Assets() http.Handler {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err)
	}
	fileServer := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		if strings.Contains(r.URL.Path, "@") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fileServer.ServeHTTP(w, r)
	})
}
