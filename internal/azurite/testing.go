package azurite

import (
	"context"
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
