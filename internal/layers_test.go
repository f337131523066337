package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/twinit/byok-backup"

// TestServicesDoNotImportTheEdge keeps the layering of issue 11: the
// services are plain Go (context first, errcode-typed errors); HTTP routes,
// JSON bodies, auth and the host's invocation payloads are the edge's
// (internal/edge/...), which calls the services, never the reverse.
func TestServicesDoNotImportTheEdge(t *testing.T) {
	for _, pkg := range []string{"backup", "restore", "byok"} {
		t.Run(pkg, func(t *testing.T) {
			// -deps lists every package the service links, transitively; each
			// line names a package and its direct imports, so a failure says
			// which package brought the edge in.
			cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./"+pkg)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps ./%s: %v\n%s", pkg, err, stderr(err))
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) < 2 {
				t.Fatalf("go list -deps ./%s listed %d packages: %q", pkg, len(lines), out)
			}
			for _, line := range lines {
				f := strings.Fields(line)
				for _, imp := range f[1:] {
					if imp == module+"/internal/edge" || strings.HasPrefix(imp, module+"/internal/edge/") {
						t.Errorf("%s imports %s: services must not depend on the edge", f[0], imp)
					}
				}
			}
		})
	}
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
