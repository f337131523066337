package internal_test

import (
	"os/exec"
	"slices"
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

// pkg is one package as `go list` reports it: its path and its direct,
// non-test imports (what it links; tests may reach further, e.g. an
// integration test of a service builds the Azure adapters).
type pkg struct {
	path    string
	imports []string
}

// listPackages runs `go list` on patterns from the module root.
func listPackages(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr(err))
	}
	var pkgs []pkg
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Fields(line)
		pkgs = append(pkgs, pkg{path: f[0], imports: f[1:]})
	}
	if len(pkgs) < 2 {
		t.Fatalf("go list %v listed %d packages: %q", args, len(pkgs), out)
	}
	return pkgs
}

// azureAllowed is where the Azure SDK may be imported: the adapters and the
// few packages whose job is the SDK itself. Everything else under internal/
// is the domain, the edge or shared vocabulary, and reaches Azure only
// through a port its adapter implements.
var azureAllowed = struct {
	suffixes, exact, trees []string
}{
	// The adapters, named after what they adapt to: blobstore/azure,
	// assets/azure, catalog/aztable, audit/aztable, byok/aztable,
	// lease/aztable, tenants/aztable, jobqueue/azqueue, keywrap/keyvault.
	suffixes: []string{"/azure", "/aztable", "/azqueue", "/keyvault"},
	exact: []string{
		module + "/internal/app",        // the one wiring: builds the SDK clients the adapters take
		module + "/internal/credential", // Entra credentials are azcore.TokenCredentials (azidentity)
		module + "/internal/azerr",      // reads SDK error types to redact and classify them
	},
	// Not product: development tooling (Azurite, the Key Vault emulator,
	// the local runner's queue pump) and test helpers; the handler links
	// none of it (TestHandlerLinksNoDevelopmentStack).
	trees: []string{module + "/internal/devstack", module + "/internal/testing"},
}

func azureImportAllowed(path string) bool {
	for _, s := range azureAllowed.suffixes {
		if strings.HasSuffix(path, s) {
			return true
		}
	}
	for _, tree := range azureAllowed.trees {
		if path == tree || strings.HasPrefix(path, tree+"/") {
			return true
		}
	}
	return slices.Contains(azureAllowed.exact, path)
}

// azureViolations names each package under internal/ outside azureAllowed
// that imports an Azure SDK module directly.
func azureViolations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if !strings.HasPrefix(p.path, module+"/internal/") || azureImportAllowed(p.path) {
			continue
		}
		for _, imp := range p.imports {
			if strings.HasPrefix(imp, "github.com/Azure/") {
				out = append(out, p.path+" imports "+imp)
			}
		}
	}
	return out
}

// devstackViolations names each package of deps (what the handler links)
// that is development tooling or a test helper.
func devstackViolations(deps []pkg) []string {
	var out []string
	for _, p := range deps {
		for _, tree := range azureAllowed.trees {
			if p.path == tree || strings.HasPrefix(p.path, tree+"/") {
				out = append(out, p.path)
			}
		}
	}
	return out
}

// edgeViolations names each import of internal/edge/... from outside the
// edge itself, the wiring (internal/app) and main (handler).
func edgeViolations(pkgs []pkg) []string {
	edge := module + "/internal/edge"
	var out []string
	for _, p := range pkgs {
		if p.path == edge || strings.HasPrefix(p.path, edge+"/") || p.path == module+"/internal/app" || p.path == module+"/handler" {
			continue
		}
		for _, imp := range p.imports {
			if imp == edge || strings.HasPrefix(imp, edge+"/") {
				out = append(out, p.path+" imports "+imp)
			}
		}
	}
	return out
}

// TestDomainImportsNoAzureSDK: the Azure SDK lives in the adapters only
// (docs/ARCHITECTURE.md, Layers), so the domain is plain Go over ports that
// the in-memory fakes also implement.
func TestDomainImportsNoAzureSDK(t *testing.T) {
	pkgs := listPackages(t, "./...")
	for _, v := range azureViolations(pkgs) {
		t.Errorf("%s: only adapters (…/azure, …/aztable, …/azqueue, …/keyvault) and the packages listed in azureAllowed may import the Azure SDK", v)
	}
	// A named exception that matches no package is a stale entry: drop it.
	for _, want := range azureAllowed.exact {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.path == want }) {
			t.Errorf("azureAllowed names %s, which does not exist", want)
		}
	}
}

// TestHandlerLinksNoDevelopmentStack: the emulator, Azurite, the local
// runner and the test helpers never ship.
func TestHandlerLinksNoDevelopmentStack(t *testing.T) {
	for _, v := range devstackViolations(listPackages(t, "-deps", "./handler")) {
		t.Errorf("the handler links %s: development tooling and test helpers must not ship", v)
	}
}

// TestOnlyTheWiringImportsTheEdge generalises TestServicesDoNotImportTheEdge
// to every package of the module: the edge calls the services, never the
// reverse, and only app.New and main put it together.
func TestOnlyTheWiringImportsTheEdge(t *testing.T) {
	for _, v := range edgeViolations(listPackages(t, "./...")) {
		t.Errorf("%s: only internal/edge, internal/app and handler may import the edge", v)
	}
}

// TestLayerRulesCatchViolations feeds each rule a listing with one upward
// import, so the rules above cannot pass by checking nothing.
func TestLayerRulesCatchViolations(t *testing.T) {
	const sdk = "github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	pkgs := []pkg{
		{module + "/internal/backup", []string{sdk, module + "/internal/edge/api"}}, // both rules broken
		{module + "/internal/byok/aztable", []string{sdk}},                          // an adapter
		{module + "/internal/devstack/runner", []string{sdk}},                       // tooling
		{module + "/internal/app", []string{sdk, module + "/internal/edge/server"}}, // the wiring
		{module + "/handler", []string{module + "/internal/edge/server"}},           // main
		{module + "/internal/edge/api", []string{module + "/internal/edge/auth"}},   // the edge itself
		{module + "/cmd/localstack", []string{module + "/internal/edge/ui"}},        // a command is not the wiring
	}
	if got, want := azureViolations(pkgs), []string{module + "/internal/backup imports " + sdk}; !slices.Equal(got, want) {
		t.Errorf("azureViolations = %q, want %q", got, want)
	}
	if got, want := edgeViolations(pkgs), []string{
		module + "/internal/backup imports " + module + "/internal/edge/api",
		module + "/cmd/localstack imports " + module + "/internal/edge/ui",
	}; !slices.Equal(got, want) {
		t.Errorf("edgeViolations = %q, want %q", got, want)
	}
	deps := []pkg{{path: module + "/internal/backup"}, {path: module + "/internal/devstack/kvemu"}, {path: module + "/internal/testing/logtest"}}
	if got, want := devstackViolations(deps), []string{module + "/internal/devstack/kvemu", module + "/internal/testing/logtest"}; !slices.Equal(got, want) {
		t.Errorf("devstackViolations = %q, want %q", got, want)
	}
}
