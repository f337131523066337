package azurite

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// TestStart starts a private Azurite for one test (or one package's
// TestMain via [StartForMain]) and stops it at cleanup. It fails the test,
// never skips it, when Azurite can't start: a missing dependency is a failure.
func TestStart(t testing.TB) *Instance {
	t.Helper()
	inst, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	t.Cleanup(inst.Stop)
	return inst
}

// RunTests is a test package's TestMain body: it starts one Azurite for the
// whole package, stores it in *inst, runs the tests, stops it and exits with
// the tests' code. A failure to start is a failure (exit 1), never a skip.
func RunTests(m *testing.M, inst **Instance) {
	i, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "azurite:", err)
		os.Exit(1)
	}
	*inst = i
	code := m.Run()
	i.Stop()
	os.Exit(code)
}
