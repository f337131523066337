package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/testing/openapitest"
)

// pendingRoutes are documented in docs/openapi.yaml (API.md §6, §7) but
// built on other branches; the lead empties this list as they merge. A
// route listed here that the handler registers fails the test, so the list
// cannot go stale.
var pendingRoutes = []string{}

// TestOpenAPICoversEveryRoute: every HTTP route the handler serves (what
// Register and the server install) is in docs/openapi.yaml, and every
// documented operation is served.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := openapitest.Load(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}

	srv := server.New(server.Config{})
	Register(srv, Services{})
	var served []string
	srv.Install(func(pattern string, _ http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		if !strings.HasPrefix(path, "/api/") {
			return // "/" readiness and the host's POST /<Function> invocations
		}
		// The page's files: the host's route ui/{*path}, one path parameter
		// in OpenAPI.
		if strings.HasSuffix(path, "/") {
			path += "{path}"
		}
		served = append(served, method+" "+path)
	})
	if len(served) < 10 {
		t.Fatalf("served routes = %v: the server installed too few", served)
	}
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in docs/openapi.yaml", r)
		}
		if slices.Contains(pendingRoutes, r) {
			t.Errorf("%s is served now: remove it from pendingRoutes", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) && !slices.Contains(pendingRoutes, r) {
			t.Errorf("docs/openapi.yaml documents %s, which the handler does not serve", r)
		}
	}
	// Every authenticated operation names its roles (API.md §2).
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if _, ok := op.Extensions["x-roles"]; !ok {
				t.Errorf("%s %s has no x-roles", method, path)
			}
		}
	}
}
