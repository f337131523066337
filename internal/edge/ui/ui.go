// Package ui serves the Settings page (API.md §8): static HTML, CSS and
// JavaScript embedded in the handler at /api/ui/. The page talks only to the
// public HTTP API with the caller's bearer token; this package holds no
// state and does no authentication (the files are public, the data is not).
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the URL path the page lives under (route "ui/{*path}" behind the
// host's "api" route prefix).
const Prefix = "/api/ui/"

// CSP allows only the page's own files and API: no inline script or style,
// no framing, no other origins. img-src data: is for inline SVG icons in CSS.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

//go:embed static
var static embed.FS

// contentType is explicit rather than mime.TypeByExtension, whose answer
// depends on the host's /etc/mime.types. "" means the file is not served.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return ""
}

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves GET and HEAD of the embedded files under [Prefix]; "" and
// "index.html" are the page. Anything else answers 404, methods other than
// GET/HEAD 405. Register it for "GET /api/ui/" (the mux then redirects
// /api/ui to /api/ui/).
func Handler() http.Handler {
	files, err := load()
	if err != nil {
		// The files are compiled in; failing here is a build defect that the
		// package's tests catch.
		panic(err)
	}
	// The binary's build is the only way the files change, so the start time
	// is a fine Last-Modified; the ETag does the real revalidation.
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == strings.TrimSuffix(Prefix, "/") {
			// Relative links in the page need the trailing slash.
			target := Prefix
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		name, ok := strings.CutPrefix(p, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		// no-cache = revalidate every time: a new deployment is picked up at
		// once, and an unchanged file costs a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, name, started, bytes.NewReader(f.body))
	})
}

// load reads every embedded file into a map keyed by its path below static/.
// Serving only from this map (no file system lookups at request time) is
// what makes traversal impossible: "../x", "a/../b", "%2e%2e" and
// directories simply aren't keys.
func load() (map[string]file, error) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := map[string]file{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct := contentType(path.Ext(p))
		if ct == "" {
			return nil // not served: only known types leave the binary
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[p] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	return files, err
}
