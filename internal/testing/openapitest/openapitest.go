// Package openapitest holds docs/openapi.yaml, the project's API reference,
// to what the handler really does: a recording middleware stores the
// request and response pairs a test produces, and Validate checks each pair
// against the document (operation found, request and response valid,
// status documented).
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// DocPath is docs/openapi.yaml's absolute path, found from this file so
// tests in any package load the same document.
func DocPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "openapi.yaml")
}

// Load reads and validates docs/openapi.yaml; kin-openapi validates an
// OpenAPI 3.1 document with JSON Schema 2020-12.
func Load(t testing.TB) *openapi3.T {
	t.Helper()
	l := openapi3.NewLoader()
	doc, err := l.LoadFromFile(DocPath())
	if err != nil {
		t.Fatalf("load %s: %v", DocPath(), err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", DocPath(), err)
	}
	return doc
}

// Exchange is one recorded request and its response.
type Exchange struct {
	Method     string
	URI        string // path and query, as the client sent them
	ReqHeader  http.Header
	ReqBody    []byte
	Status     int
	RespHeader http.Header
	RespBody   []byte
}

func (e Exchange) String() string { return e.Method + " " + e.URI + " → " + fmt.Sprint(e.Status) }

// Recorder is an http.Handler that forwards to Next and keeps every
// exchange whose path Keep accepts (nil: all).
type Recorder struct {
	Next http.Handler
	Keep func(path string) bool

	mu  sync.Mutex
	got []Exchange
}

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.Keep != nil && !r.Keep(req.URL.Path) {
		r.Next.ServeHTTP(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	// Buffered: the API answers small JSON bodies.
	rec := httptest.NewRecorder()
	r.Next.ServeHTTP(rec, req)
	res := rec.Result()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = w.Write(rec.Body.Bytes())

	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, Exchange{Method: req.Method, URI: req.URL.RequestURI(), ReqHeader: req.Header.Clone(), ReqBody: body,
		Status: res.StatusCode, RespHeader: res.Header.Clone(), RespBody: rec.Body.Bytes()})
}

// Exchanges returns what was recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.got...)
}

// Validator checks exchanges against one document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator loads docs/openapi.yaml.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	doc := Load(t)
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &Validator{doc: doc, router: r}
}

// Validate checks one exchange: the operation exists, the request matches
// its parameters and body, the status is documented (no fallback to
// `default`) and the response body matches that status's schema.
func (v *Validator) Validate(ctx context.Context, e Exchange) error {
	req := httptest.NewRequest(e.Method, e.URI, bytes.NewReader(e.ReqBody))
	req.Header = e.ReqHeader.Clone()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s: not in the document: %w", e, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	// A request the server refused (4xx) may break the document's rules on
	// purpose; its error response is still validated.
	if e.Status < 400 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("%s: request: %w", e, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: e.Status, Header: e.RespHeader, Options: opts}
	out.SetBodyBytes(e.RespBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%s: response %s: %w", e, truncate(e.RespBody), err)
	}
	return nil
}

// Check validates every exchange, reporting each mismatch as a test error,
// and returns how many were checked.
func (v *Validator) Check(t testing.TB, ex []Exchange) int {
	t.Helper()
	for _, e := range ex {
		if err := v.Validate(context.Background(), e); err != nil {
			t.Errorf("docs/openapi.yaml: %v", err)
		}
	}
	return len(ex)
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
