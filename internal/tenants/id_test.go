package tenants_test

import (
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/tenants"
)

func TestValidID(t *testing.T) {
	for _, s := range []string{"a", "acme", "acme-sandbox", "0", "a1-b2", strings.Repeat("a", 63)} {
		if !tenants.ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-a", "a-", "A", "a_b", "a.b", "a/b", "acme\n", strings.Repeat("a", 64), "é"} {
		if tenants.ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}
