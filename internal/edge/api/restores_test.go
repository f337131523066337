package api

import (
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/tenants"
)

// FuzzRequestCheck: whatever the body says, an accepted request names a
// valid backup id, a valid target tenant and a valid mode (or a dry run).
func FuzzRequestCheck(f *testing.F) {
	id := catalog.NewID(time.Unix(1e9, 0))
	f.Add(id, "", "replace", false)
	f.Add(id, "acme-sandbox", "", true)
	f.Add("../"+id, "Acme", "merge", false)
	f.Add(id, strings.Repeat("a", 64), "overwrite", true)
	f.Fuzz(func(t *testing.T, backupID, target, mode string, dryRun bool) {
		got, m, err := restoreRequest{BackupID: backupID, TargetTenant: target, Mode: mode, DryRun: dryRun}.check("acme")
		if err != nil {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Fatalf("error code %s", errcode.CodeOf(err))
			}
			return
		}
		if !catalog.ValidID(backupID) || !tenants.ValidID(got) || (m != "" && !m.Valid()) || (m == "" && !dryRun) {
			t.Fatalf("accepted %q %q %q %v -> %q %q", backupID, target, mode, dryRun, got, m)
		}
		if target == "" && got != "acme" {
			t.Fatalf("default target = %q", got)
		}
	})
}
