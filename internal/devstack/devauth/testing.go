package devauth

import "testing"

// TestStart starts an issuer on a free loopback port for one test and
// closes it at cleanup; it fails the test if it can't start.
func TestStart(t testing.TB) *Issuer {
	t.Helper()
	iss, err := Start(Options{})
	if err != nil {
		t.Fatalf("devauth: %v", err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	return iss
}
