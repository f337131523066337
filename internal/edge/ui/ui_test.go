package ui

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// pages is every file the page consists of, with the type it must be served as.
var pages = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"app.css":    "text/css; charset=utf-8",
}

func embedded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(static, "static/"+name)
	if err != nil {
		t.Fatalf("embedded %s: %v", name, err)
	}
	return b
}

func get(t *testing.T, h http.Handler, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestEmbeddedFilesExist(t *testing.T) {
	for name := range pages {
		if b := embedded(t, name); len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestServesEveryFileWithTypeAndHeaders(t *testing.T) {
	h := Handler()
	targets := map[string]string{"/api/ui/": "index.html"}
	for name := range pages {
		targets["/api/ui/"+name] = name
	}
	for target, name := range targets {
		t.Run(target, func(t *testing.T) {
			res := get(t, h, http.MethodGet, target, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != pages[name] {
				t.Errorf("Content-Type = %q, want %q", got, pages[name])
			}
			if !bytes.Equal(body, embedded(t, name)) {
				t.Errorf("body differs from the embedded %s", name)
			}
			checkCSP(t, res.Header.Get("Content-Security-Policy"))
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          "no-cache",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			etag := res.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			// Revalidation with the ETag costs no body.
			res = get(t, h, http.MethodGet, target, http.Header{"If-None-Match": {etag}})
			if res.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
			}
		})
	}
}

// checkCSP parses the policy and holds it to what §8 needs: only the page's
// own origin for scripts, styles and API calls, nothing inline, no framing.
func checkCSP(t *testing.T, csp string) {
	t.Helper()
	dirs := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			dirs[f[0]] = f[1:]
		}
	}
	want := map[string][]string{
		"default-src":     {"'self'"},
		"script-src":      {"'self'"},
		"style-src":       {"'self'"},
		"connect-src":     {"'self'"},
		"frame-ancestors": {"'none'"},
		"base-uri":        {"'none'"},
		"object-src":      {"'none'"},
		"form-action":     {"'self'"},
	}
	for d, w := range want {
		if !slices.Equal(dirs[d], w) {
			t.Errorf("CSP %s = %v, want %v (policy %q)", d, dirs[d], w, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("CSP allows unsafe sources or wildcards: %q", csp)
	}
}

func TestHeadAndMethods(t *testing.T) {
	h := Handler()
	res := get(t, h, http.MethodHead, "/api/ui/app.js", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != pages["app.js"] {
		t.Errorf("HEAD: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res := get(t, h, m, "/api/ui/", nil)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d Allow %q, want 405 GET, HEAD", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
}

func TestRedirectsToTrailingSlash(t *testing.T) {
	res := get(t, Handler(), http.MethodGet, "/api/ui?tenant=acme", nil)
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/api/ui/?tenant=acme" {
		t.Errorf("status %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

var unknown = []string{
	"/api/ui/nope.js",
	"/api/ui/static/index.html",
	"/api/ui/ui.go",
	"/api/ui/index.html/",
	"/api/ui//app.js",
	"/api/ui/./app.js",
	"/api/ui/../ui/app.js",
	"/api/ui/%2e%2e/ui.go",
	"/api/ui/..%2fui.go",
	"/api/ui/..%5cui.go",
	"/api/ui/%2fetc%2fpasswd",
	"/api/ui/app.js%00",
	"/api/ui/APP.JS",
	"/api/uix",
	"/api/health",
	"/",
}

func TestTraversalAndUnknownPathsAre404(t *testing.T) {
	h := Handler()
	for _, target := range unknown {
		res := get(t, h, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, res.StatusCode)
		}
	}
}

// TestBehindServeMux mounts the handler the way the server will
// ("GET /api/ui/") and requests raw paths over a real connection: whatever
// the mux cleans or redirects, no request reaches anything but the three
// files.
func TestBehindServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /api/ui/", Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, target := range append(unknown, "/api/ui/../../handler/main.go", "/api/ui/%2e%2e/%2e%2e/go.mod") {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = target // sent as is, not cleaned by the client
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("GET %s: 200 with %d bytes", target, len(body))
		}
	}
	res, err := client.Get(srv.URL + "/api/ui")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// The mux redirects itself (307 in current Go): any redirect will do.
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/api/ui/" {
		t.Errorf("/api/ui: %d %q, want a redirect to /api/ui/", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestIndexHasNoInlineCode parses index.html: the CSP forbids inline script
// and style, so any would silently not run; the page must also load only
// its own files.
func TestIndexHasNoInlineCode(t *testing.T) {
	doc, err := html.Parse(bytes.NewReader(embedded(t, "index.html")))
	if err != nil {
		t.Fatal(err)
	}
	var scripts, sheets int
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s>: inline event handler", n.Data, a.Key)
			}
			if a.Key == "style" {
				t.Errorf("<%s style>: inline style", n.Data)
			}
			if (a.Key == "href" || a.Key == "src" || a.Key == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
				t.Errorf("<%s %s=%q>: javascript: URL", n.Data, a.Key, a.Val)
			}
		}
		switch n.Data {
		case "style":
			t.Error("<style> element: inline style")
		case "script":
			scripts++
			src := attr(n, "src")
			if src == "" || n.FirstChild != nil {
				t.Errorf("<script> without src or with inline content")
			}
			checkLocal(t, src)
		case "link":
			if attr(n, "rel") == "stylesheet" {
				sheets++
				checkLocal(t, attr(n, "href"))
			}
		case "input", "select", "textarea":
			// Every control has a label (accessibility, §8).
			if attr(n, "type") == "hidden" {
				continue
			}
			id := attr(n, "id")
			if id == "" || !hasLabelFor(doc, id) {
				t.Errorf("<%s id=%q> has no <label for>", n.Data, id)
			}
		}
	}
	if scripts != 1 || sheets != 1 {
		t.Errorf("%d scripts and %d stylesheets, want app.js and app.css", scripts, sheets)
	}
}

// checkLocal requires a reference to one of the page's own files, which the
// handler serves.
func checkLocal(t *testing.T, ref string) {
	t.Helper()
	if _, ok := pages[ref]; !ok {
		t.Errorf("reference %q is not one of the page's files", ref)
		return
	}
	if res := get(t, Handler(), http.MethodGet, "/api/ui/"+ref, nil); res.StatusCode != http.StatusOK {
		t.Errorf("%s: status %d", ref, res.StatusCode)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasLabelFor(doc *html.Node, id string) bool {
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "label" && attr(n, "for") == id {
			return true
		}
	}
	return false
}

// TestScriptMatchesPage ties app.js to index.html: every element the script
// looks up by id exists (a renamed id would otherwise break the page at run
// time, which no Go test would see), and the script never builds HTML from
// strings (API text must stay text).
func TestScriptMatchesPage(t *testing.T) {
	js := string(embedded(t, "app.js"))
	doc, err := html.Parse(bytes.NewReader(embedded(t, "index.html")))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for n := range doc.Descendants() {
		if id := attr(n, "id"); n.Type == html.ElementNode && id != "" {
			if ids[id] {
				t.Errorf("duplicate id %q", id)
			}
			ids[id] = true
		}
	}
	// Template contents are a separate fragment to the parser: include them.
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "template" {
			for c := range n.Descendants() {
				if id := attr(c, "id"); c.Type == html.ElementNode && id != "" {
					ids[id] = true
				}
			}
		}
	}
	refs := regexp.MustCompile(`\$\('([A-Za-z0-9_-]+)'\)|id: '([A-Za-z0-9_-]+)'`).FindAllStringSubmatch(js, -1)
	if len(refs) < 20 {
		t.Fatalf("found only %d id references in app.js: the pattern is stale", len(refs))
	}
	for _, m := range refs {
		id := m[1] + m[2]
		if !ids[id] {
			t.Errorf("app.js refers to #%s, which index.html lacks", id)
		}
	}
	// Field error nodes are found by suffix.
	for _, m := range regexp.MustCompile(`id: '([A-Za-z0-9_-]+)'`).FindAllStringSubmatch(js, -1) {
		if !ids[m[1]+"-err"] {
			t.Errorf("index.html lacks #%s-err for the field's message", m[1])
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	// The KEEP list's inputs, looked up by variable.
	for _, k := range []string{"keepLast", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"} {
		if !ids[k] {
			t.Errorf("index.html lacks #%s", k)
		}
	}
}
