package azurite

import (
	"context"
	"flag"
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
	os.Exit(Run(m, inst))
}

// Run is [RunTests] returning the exit code instead of exiting, for a
// TestMain with setup of its own to undo. In a fuzz worker process (a copy
// of the test binary that only runs the fuzz target) it starts nothing and
// leaves *inst nil: an Azurite per worker would starve the fuzzer.
func Run(m *testing.M, inst **Instance) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	i, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "azurite:", err)
		return 1
	}
	*inst = i
	defer i.Stop()
	return m.Run()
}
