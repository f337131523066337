package backup_test

import (
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Taking the tenant off the customer key's ownership tag is a definitive
// refusal, like disabling the key (API.md §5): the backup falls back to
// the platform key with fallbackReason KeyOwnershipNotProven, or fails with
// CustomerKeyUnavailable when the fallback is off; the customer key is
// never asked to wrap.
func TestOwnershipTagRemovedFallsBackOrFails(t *testing.T) {
	for _, fallback := range []bool{true, false} {
		e := newEnv(t)
		e.seed(testTenant, 4, 1)
		e.enableBYOK(testTenant, fallback)
		must(t, e.emu.SetTags(custVault, "k", "", map[string]string{keywrap.DefaultOwnershipTag: "someone-else"}))
		job := e.request(testTenant)
		if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
			t.Fatalf("worker = %d %s", rec.Code, rec.Body)
		}
		b := e.row(testTenant, job.BackupID)
		if n := e.emu.CountOps(custVault, "wrapKey"); n != 0 {
			t.Errorf("customer key wrapped %d times though not tagged for the tenant", n)
		}
		if fallback {
			if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Platform || b.FallbackReason == nil ||
				b.FallbackReason.Code != errcode.KeyOwnershipNotProven || !strings.Contains(b.FallbackReason.Message, keywrap.DefaultOwnershipTag) {
				t.Fatalf("fallback row = %+v %+v", b, b.FallbackReason)
			}
		} else if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.CustomerKeyUnavailable ||
			!strings.Contains(b.Error.Message, string(errcode.KeyOwnershipNotProven)) {
			t.Fatalf("strict row = %+v %+v", b, b.Error)
		}
		st, err := e.byok.Status(t.Context(), testTenant)
		must(t, err)
		if st.State != byok.Degraded || st.LastCheck.Code != string(errcode.KeyOwnershipNotProven) {
			t.Errorf("byok status = %+v", st)
		}
	}
}
