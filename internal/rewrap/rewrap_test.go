package rewrap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

func blobExists(t *testing.T, e *env, name string) bool {
	t.Helper()
	_, err := e.blobs.GetBlob(t.Context(), name)
	if err != nil && !blobstore.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// Re-wrap to the customer key's current version: backups of an older
// version are re-wrapped, platform ones skipped; rows, blobs, audit and
// restores follow; a redelivery and a second run wrap nothing again.
func TestRewrapToCurrentCustomerVersion(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := time.Now()
	c1 := e.makeBackup(ctx, e.custRef, now.Add(-3*time.Hour))
	c2 := e.makeBackup(ctx, e.custRef, now.Add(-2*time.Hour))
	p1 := e.makeBackup(ctx, e.platRef, now.Add(-time.Hour))
	v2, err := e.emu.RotateKey(vault, keyName)
	must(t, err)

	// GET …/byok's counts (Table Storage projection): both customer
	// backups are on an older version until the re-wrap.
	if c, err := catalog.CountKeys(ctx, e.cat, tenant, v2); err != nil || c != (catalog.KeyCounts{Customer: 2, Platform: 1, OlderCustomerKeys: 2}) {
		t.Fatalf("counts before = %+v, %v", c, err)
	}
	j := e.start(ctx, Request{To: keywrap.Customer})
	must(t, e.run(ctx, j, 1))
	if c, err := catalog.CountKeys(ctx, e.cat, tenant, v2); err != nil || c != (catalog.KeyCounts{Customer: 2, Platform: 1}) {
		t.Fatalf("counts after = %+v, %v", c, err)
	}
	r := e.rewrapRow(ctx, j.RewrapID)
	if r.State != catalog.RewrapSucceeded || r.Progress != (catalog.RewrapProgress{Total: 3, Done: 2, Skipped: 1}) || len(r.Failures) != 0 {
		t.Fatalf("rewrap = %s %+v %+v %v", r.State, r.Progress, r.Failures, r.Error)
	}
	for _, old := range []*catalog.Backup{c1, c2} {
		b := e.backup(ctx, old.BackupID)
		if b.KeyID != v2 || b.KeySource != keywrap.Customer || b.RewrappedAt.IsZero() ||
			len(b.PreviousKeyIDs) != 1 || b.PreviousKeyIDs[0] != old.KeyID || b.Rewraps != 1 {
			t.Fatalf("row after re-wrap: key %s (%s) previous %v at %v rewraps %d", b.KeyID, b.KeySource, b.PreviousKeyIDs, b.RewrappedAt, b.Rewraps)
		}
		if b.ManifestDigest == old.ManifestDigest || !strings.HasSuffix(b.ManifestBlob, "/rewrap-manifest-000001") {
			t.Fatalf("row names %s (%s)", b.ManifestBlob, b.ManifestDigest)
		}
		if blobExists(t, e, old.ManifestBlob) {
			t.Error("the old manifest (old wrapping) is still stored")
		}
		must(t, e.verify(ctx, b.BackupID))
	}
	if b := e.backup(ctx, p1.BackupID); b.KeyID != p1.KeyID || b.Rewraps != 0 {
		t.Fatalf("platform backup changed: %s", b.KeyID)
	}
	must(t, e.verify(ctx, p1.BackupID))
	if w, u := e.count.wraps.Load(), e.count.unwraps.Load(); w != 2 || u != 2 {
		t.Fatalf("wraps %d unwraps %d, want 2 and 2", w, u)
	}
	rows, err := e.auditLog.List(ctx, tenant, 0)
	must(t, err)
	ops := map[string]int{}
	for _, row := range rows {
		if row.BackupID != c1.BackupID && row.BackupID != c2.BackupID {
			t.Errorf("audit row for backup %q", row.BackupID)
		}
		ops[string(row.Operation)+" "+row.Outcome]++
	}
	if ops[string(audit.RewrapUnwrap)+" ok"] != 2 || ops[string(audit.RewrapWrap)+" ok"] != 2 || len(rows) != 4 {
		t.Fatalf("audit = %v", ops)
	}

	// Redelivery of the ended job, then a second re-wrap: nothing wrapped.
	must(t, e.run(ctx, j, 2))
	j2 := e.start(ctx, Request{To: keywrap.Customer})
	must(t, e.run(ctx, j2, 1))
	if r := e.rewrapRow(ctx, j2.RewrapID); r.Progress != (catalog.RewrapProgress{Total: 3, Skipped: 3}) {
		t.Fatalf("second run progress %+v", r.Progress)
	}
	if w := e.count.wraps.Load(); w != 2 {
		t.Fatalf("wraps after redelivery and a second run = %d, want 2", w)
	}
}

// to: platform moves customer-key backups to the platform key: they then
// restore with the customer key revoked. includePlatformBackups moves
// platform backups to the customer key.
func TestRewrapToPlatformAndBack(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.makeBackup(ctx, e.custRef, time.Now().Add(-2*time.Hour))
	p := e.makeBackup(ctx, e.platRef, time.Now().Add(-time.Hour))

	j := e.start(ctx, Request{To: keywrap.Platform})
	must(t, e.run(ctx, j, 1))
	if r := e.rewrapRow(ctx, j.RewrapID); r.Progress != (catalog.RewrapProgress{Total: 2, Done: 1, Skipped: 1}) {
		t.Fatalf("progress %+v", r.Progress)
	}
	b := e.backup(ctx, c.BackupID)
	if b.KeySource != keywrap.Platform || !strings.Contains(b.KeyID, "/keys/"+platKey+"/") {
		t.Fatalf("backup key %s (%s)", b.KeyID, b.KeySource)
	}
	must(t, e.emu.Revoke(vault, "emulator."+appID+"."+entraTenant))
	must(t, e.verify(ctx, c.BackupID))

	// Back, with the platform backups too.
	must(t, e.emu.Grant(vault, "emulator."+appID+"."+entraTenant, "get", "wrapKey", "unwrapKey"))
	j = e.start(ctx, Request{To: keywrap.Customer, IncludePlatformBackups: true})
	must(t, e.run(ctx, j, 1))
	if r := e.rewrapRow(ctx, j.RewrapID); r.Progress != (catalog.RewrapProgress{Total: 2, Done: 2}) {
		t.Fatalf("progress %+v %+v", r.Progress, r.Failures)
	}
	for _, id := range []string{c.BackupID, p.BackupID} {
		b := e.backup(ctx, id)
		if b.KeySource != keywrap.Customer || b.EntraTenantID != entraTenant {
			t.Fatalf("backup %s key %s (%s)", id, b.KeyID, b.KeySource)
		}
		must(t, e.verify(ctx, id))
	}
	if b := e.backup(ctx, c.BackupID); len(b.PreviousKeyIDs) != 2 || b.Rewraps != 2 || !strings.HasSuffix(b.ManifestBlob, "rewrap-manifest-000002") {
		t.Fatalf("twice re-wrapped: previous %v rewraps %d manifest %s", b.PreviousKeyIDs, b.Rewraps, b.ManifestBlob)
	}
}

// A dry run counts and touches no key and no row.
func TestRewrapDryRun(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.makeBackup(ctx, e.custRef, time.Now().Add(-2*time.Hour))
	e.makeBackup(ctx, e.platRef, time.Now().Add(-time.Hour))
	j := e.start(ctx, Request{To: keywrap.Platform, DryRun: true})
	must(t, e.run(ctx, j, 1))
	if r := e.rewrapRow(ctx, j.RewrapID); r.State != catalog.RewrapSucceeded || r.Progress != (catalog.RewrapProgress{Total: 2, Done: 1, Skipped: 1}) || !r.DryRun {
		t.Fatalf("dry run %s %+v", r.State, r.Progress)
	}
	if w, u := e.count.wraps.Load(), e.count.unwraps.Load(); w+u != 0 {
		t.Fatalf("dry run used keys: %d wraps %d unwraps", w, u)
	}
	if b := e.backup(ctx, c.BackupID); b.KeyID != c.KeyID || b.Rewraps != 0 {
		t.Fatal("dry run changed a row")
	}
}

// One re-wrap at a time per tenant; to: customer needs BYOK active.
func TestRewrapStartConflicts(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.start(ctx, Request{To: keywrap.Platform})
	if _, err := e.svc.Start(ctx, tenant, Request{To: keywrap.Platform}); errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("second start: %v, want Conflict", err)
	}
	e2 := newEnv(t)
	e2.keys.enabled = false
	if _, err := e2.svc.Start(ctx, tenant, Request{}); errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("to customer with BYOK off: %v, want Conflict", err)
	}
	for _, bad := range []Request{{To: "other"}, {To: keywrap.Platform, IncludePlatformBackups: true}} {
		if _, err := e2.svc.Start(ctx, tenant, bad); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("%+v: %v, want InvalidRequest", bad, err)
		}
	}
}

// A backup whose old key is gone is listed in failures and keeps its
// wrapping; the others are re-wrapped.
func TestRewrapOldKeyGone(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	gone := e.makeBackup(ctx, e.custRef, time.Now().Add(-2*time.Hour))
	v1 := gone.KeyID[strings.LastIndexByte(gone.KeyID, '/')+1:]
	_, err := e.emu.RotateKey(vault, keyName)
	must(t, err)
	ok := e.makeBackup(ctx, e.platRef, time.Now().Add(-time.Hour))
	must(t, e.emu.SetEnabled(vault, keyName, v1, false))

	j := e.start(ctx, Request{To: keywrap.Customer, IncludePlatformBackups: true})
	must(t, e.run(ctx, j, 1))
	r := e.rewrapRow(ctx, j.RewrapID)
	if r.State != catalog.RewrapSucceeded || r.Progress != (catalog.RewrapProgress{Total: 2, Done: 1, Failed: 1}) ||
		len(r.Failures) != 1 || r.Failures[0].BackupID != gone.BackupID || r.Failures[0].Code != errcode.CustomerKeyUnavailable {
		t.Fatalf("rewrap %s %+v %+v", r.State, r.Progress, r.Failures)
	}
	if b := e.backup(ctx, gone.BackupID); b.KeyID != gone.KeyID || b.ManifestBlob != gone.ManifestBlob || !blobExists(t, e, gone.ManifestBlob) {
		t.Fatal("the failed backup lost its wrapping")
	}
	must(t, e.verify(ctx, ok.BackupID))
	must(t, e.emu.SetEnabled(vault, keyName, v1, true))
	must(t, e.verify(ctx, gone.BackupID))
}

// A crash after any step of a backup's re-wrap leaves it restorable with
// the key its row names; the redelivery finishes the job, re-wrapping
// nothing twice once the new wrapping was stored.
func TestRewrapCrashAtEveryStep(t *testing.T) {
	for _, step := range []string{stepWrapped, stepWritten, stepCommit, stepOldGone} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			old := e.makeBackup(ctx, e.custRef, time.Now().Add(-time.Hour))
			v2, err := e.emu.RotateKey(vault, keyName)
			must(t, err)
			crash := errors.New("injected crash")
			e.svc.fault = func(s string) error {
				if s == step {
					return crash
				}
				return nil
			}
			j := e.start(ctx, Request{To: keywrap.Customer})
			if err := e.run(ctx, j, 1); !errors.Is(err, crash) {
				t.Fatalf("first delivery: %v, want the crash", err)
			}
			mid := e.backup(ctx, old.BackupID)
			committed := step == stepCommit || step == stepOldGone
			if committed != (mid.KeyID == v2) {
				t.Fatalf("after %s the row names %s", step, mid.KeyID)
			}
			must(t, e.verify(ctx, old.BackupID))

			e.svc.fault = nil
			must(t, e.run(ctx, j, 2))
			r := e.rewrapRow(ctx, j.RewrapID)
			wantDone, wantSkipped := int64(1), int64(0)
			if committed {
				wantDone, wantSkipped = 0, 1
			}
			if r.State != catalog.RewrapSucceeded || r.Progress.Done != wantDone || r.Progress.Skipped != wantSkipped {
				t.Fatalf("after redelivery: %s %+v", r.State, r.Progress)
			}
			b := e.backup(ctx, old.BackupID)
			if b.KeyID != v2 || b.Rewraps != 1 {
				t.Fatalf("after redelivery the row names %s (%d re-wraps)", b.KeyID, b.Rewraps)
			}
			if blobExists(t, e, old.ManifestBlob) {
				t.Error("the old manifest survived the redelivery")
			}
			must(t, e.verify(ctx, old.BackupID))
			// Only a crash before the new wrapping was stored costs a
			// second wrap: that wrapping was lost with the attempt.
			want := int64(1)
			if step == stepWrapped {
				want = 2
			}
			if w := e.count.wraps.Load(); w != want {
				t.Fatalf("wraps = %d, want %d", w, want)
			}
		})
	}
}

// Key ownership (API.md §5) holds for both sides: a key whose tag no
// longer lists the tenant unwraps nothing (each backup fails and keeps its
// wrapping) and wraps nothing (the job fails with KeyOwnershipNotProven).
func TestRewrapChecksOwnership(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c := e.makeBackup(ctx, e.custRef, time.Now().Add(-2*time.Hour))
	p := e.makeBackup(ctx, e.platRef, time.Now().Add(-time.Hour))
	must(t, e.emu.SetTags(vault, keyName, "", map[string]string{keywrap.DefaultOwnershipTag: "globex"}))

	j := e.start(ctx, Request{To: keywrap.Platform})
	must(t, e.run(ctx, j, 1))
	r := e.rewrapRow(ctx, j.RewrapID)
	if r.State != catalog.RewrapSucceeded || r.Progress.Failed != 1 || len(r.Failures) != 1 || r.Failures[0].Code != errcode.CustomerKeyUnavailable {
		t.Fatalf("to platform with the tag removed: %s %+v %+v", r.State, r.Progress, r.Failures)
	}
	if b := e.backup(ctx, c.BackupID); b.KeyID != c.KeyID {
		t.Fatal("a backup was unwrapped with a key the tenant does not own")
	}

	j = e.start(ctx, Request{To: keywrap.Customer, IncludePlatformBackups: true})
	must(t, e.run(ctx, j, 1))
	r = e.rewrapRow(ctx, j.RewrapID)
	if r.State != catalog.RewrapFailed || r.Error == nil || r.Error.Code != errcode.KeyOwnershipNotProven {
		t.Fatalf("to customer with the tag removed: %s %+v", r.State, r.Error)
	}
	if b := e.backup(ctx, p.BackupID); b.KeySource != keywrap.Platform {
		t.Fatal("a backup was wrapped with a key the tenant does not own")
	}
	if w := e.count.wraps.Load(); w != 0 {
		t.Fatalf("wraps = %d: the target key's ownership is checked before any wrap", w)
	}
}

// trackingBackups records how many scanned backups are in flight: yielded
// by the scan and not yet re-wrapped (each gets one row update).
type trackingBackups struct {
	Backups
	mu      sync.Mutex
	pending map[string]bool
	max     int
}

func (tb *trackingBackups) ScanBackups(ctx context.Context, tenant string, o catalog.ScanOptions, fn func(*catalog.Backup) error) error {
	return tb.Backups.ScanBackups(ctx, tenant, o, func(b *catalog.Backup) error {
		tb.mu.Lock()
		tb.pending[b.BackupID] = true
		tb.max = max(tb.max, len(tb.pending))
		tb.mu.Unlock()
		return fn(b)
	})
}

func (tb *trackingBackups) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	tb.mu.Lock()
	delete(tb.pending, b.BackupID)
	tb.mu.Unlock()
	return tb.Backups.UpdateBackup(ctx, b)
}

// The job never holds the tenant's backups: the scan hands one backup at a
// time to the workers, so at most Parallelism+1 are in flight however many
// the tenant has (memory flat in the number of backups).
func TestRewrapHoldsNoListing(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const n = 40
	for i := range n {
		e.makeBackup(ctx, e.custRef, time.Now().Add(-time.Duration(n-i)*time.Minute))
	}
	tb := &trackingBackups{Backups: e.cat, pending: map[string]bool{}}
	e.svc = e.newService(t, tb)
	j := e.start(ctx, Request{To: keywrap.Platform})
	must(t, e.run(ctx, j, 1))
	if r := e.rewrapRow(ctx, j.RewrapID); r.Progress.Done != n {
		t.Fatalf("progress %+v", r.Progress)
	}
	if tb.max > DefaultParallelism+1 || len(tb.pending) != 0 {
		t.Fatalf("%d backups in flight at most (%d left), want at most %d", tb.max, len(tb.pending), DefaultParallelism+1)
	}
}

// A re-wrap that never ran (its message lost) blocks the tenant only
// until AbandonAfter; then the next POST fails it and starts anew.
func TestRewrapAbandonedDoesNotBlock(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	stuck := e.start(ctx, Request{To: keywrap.Platform})
	if _, err := e.svc.Start(ctx, tenant, Request{To: keywrap.Platform}); errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("fresh queued re-wrap: %v, want Conflict", err)
	}
	later := time.Now().Add(DefaultAbandonAfter + time.Minute)
	e.svc.o.Now = func() time.Time { return later }
	r, err := e.svc.Start(ctx, tenant, Request{To: keywrap.Platform})
	if err != nil {
		t.Fatalf("start after the stuck one was abandoned: %v", err)
	}
	if old := e.rewrapRow(ctx, stuck.RewrapID); old.State != catalog.RewrapFailed || old.Error == nil {
		t.Fatalf("abandoned re-wrap = %s %v", old.State, old.Error)
	}
	if r.RewrapID == stuck.RewrapID || r.State != catalog.RewrapQueued {
		t.Fatalf("new re-wrap %+v", r)
	}
}
