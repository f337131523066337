package config

import (
	"strings"
	"testing"
)

// TestRestoreSpoolLimit: RESTORE_SPOOL_LIMIT_MB defaults to 1 GiB, takes a
// whole number of MiB and rejects zero or junk.
func TestRestoreSpoolLimit(t *testing.T) {
	c, err := Load(getenv(validEnv()))
	if err != nil || c.RestoreSpoolLimitMB != 1024 {
		t.Fatalf("default = %d, %v", c.RestoreSpoolLimitMB, err)
	}
	env := validEnv()
	env["RESTORE_SPOOL_LIMIT_MB"] = "64"
	if c, err = Load(getenv(env)); err != nil || c.RestoreSpoolLimitMB != 64 {
		t.Fatalf("64 = %d, %v", c.RestoreSpoolLimitMB, err)
	}
	for _, bad := range []string{"0", "-1", "1GiB", "2000000"} {
		env["RESTORE_SPOOL_LIMIT_MB"] = bad
		if _, err := Load(getenv(env)); err == nil || !strings.Contains(err.Error(), "RESTORE_SPOOL_LIMIT_MB") {
			t.Fatalf("%q accepted: %v", bad, err)
		}
	}
}
