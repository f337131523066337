package byok

import (
	"testing"
)

// TestOwnershipOff: BYOK_OWNERSHIP_TAG empty turns the check off; the
// status then has no ownership to show.
func TestOwnershipOff(t *testing.T) {
	e := newEnv(t, envOptions{noOwnership: true, inMemoryKeys: true})
	e.vault("acme-kv", 2048)
	e.tag("acme-kv", "k", "beta")
	st, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	if st.State != Active || st.Ownership != nil {
		t.Fatalf("status %+v", st)
	}
}
