package backup_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// mkRow writes a row of tenant in status, as of at (a failed row fails
// at at; a completed one commits manifest, which may be empty).
func (e *env) mkRow(tenant string, status catalog.Status, at time.Time, manifest func(id string) string) *catalog.Backup {
	e.t.Helper()
	ctx := e.t.Context()
	b := catalog.NewBackup(tenant, catalog.ReasonManual, at)
	must(e.t, e.cat.CreateBackup(ctx, b))
	switch status {
	case catalog.StatusRunning:
		must(e.t, b.Start("a1", at, false))
	case catalog.StatusFailed:
		must(e.t, b.Start("a1", at, false))
		must(e.t, b.Fail(at, errcode.Detail{Code: errcode.Internal, Message: "x"}))
	case catalog.StatusCompleted:
		must(e.t, b.Start("a1", at, false))
		b.ManifestBlob = manifest(b.BackupID)
		must(e.t, b.Complete(at))
	}
	if status != catalog.StatusQueued {
		must(e.t, e.cat.UpdateBackup(ctx, b))
	}
	return b
}

// put writes one blob under the backup's attempt a1 and returns its name.
func (e *env) put(tenant, id, rest string) string {
	e.t.Helper()
	name := tenant + "/" + id + "/" + rest
	must(e.t, e.blobs.PutBlob(e.t.Context(), name, []byte("sealed")))
	return name
}

func (e *env) checkBlobs(gone, kept []string) {
	e.t.Helper()
	names := e.blobNames("")
	for _, n := range gone {
		if slices.Contains(names, n) {
			e.t.Errorf("garbage %s kept", n)
		}
	}
	for _, n := range kept {
		if !slices.Contains(names, n) {
			e.t.Errorf("%s deleted", n)
		}
	}
}

// The sweep deletes only what a row names as garbage: the blobs of a
// backup failed for more than 24 h and the abandoned attempts of a
// completed one. Prefixes without a row, however old, are kept and
// reported in one log line with counts; recent failures, queued and
// running backups are kept; running backups whose heartbeat is older than
// the grace period are marked failed (their blobs kept for now).
func TestSweep(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 3, 1)
	done := e.request(testTenant)
	if rec := e.deliver(ctx, e.handler, done, 1); rec.Code != 200 {
		t.Fatalf("worker = %d", rec.Code)
	}
	committed := e.row(testTenant, done.BackupID)
	abandoned := e.put(testTenant, done.BackupID, "adeadbeef00000000/chunks/files/0000000000")

	now := e.clock.Now()
	chunk := "a1/chunks/records/0000000000"
	failedOld := e.mkRow(testTenant, catalog.StatusFailed, now.Add(-25*time.Hour), nil)
	failedNew := e.mkRow(testTenant, catalog.StatusFailed, now.Add(-2*time.Hour), nil) // past the old 1 h grace
	queued := e.mkRow(testTenant, catalog.StatusQueued, now.Add(-72*time.Hour), nil)
	staleRunning := e.mkRow(testTenant, catalog.StatusRunning, now.Add(-3*time.Hour), nil)
	liveRunning := e.mkRow(testTenant, catalog.StatusRunning, now, nil)
	orphanOld, orphanNew := catalog.NewID(now.Add(-90*24*time.Hour)), catalog.NewID(now)

	gone := []string{e.put(testTenant, failedOld.BackupID, chunk), e.put(testTenant, failedOld.BackupID, "a2/chunks/files/0000000000"), abandoned}
	kept := []string{e.put(testTenant, failedNew.BackupID, chunk), e.put(testTenant, orphanOld, chunk), e.put(testTenant, orphanOld, "a1/manifest"),
		e.put(testTenant, orphanNew, chunk), e.put(testTenant, queued.BackupID, chunk), e.put(testTenant, staleRunning.BackupID, chunk),
		e.put(testTenant, liveRunning.BackupID, chunk)}
	must(t, e.blobs.PutBlob(ctx, "not-a-tenant!/x", []byte("foreign")))
	kept = append(kept, "not-a-tenant!/x")

	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs(gone, kept)
	for _, n := range e.blobNames(testTenant + "/" + done.BackupID + "/") {
		if !strings.HasPrefix(n, strings.TrimSuffix(committed.ManifestBlob, "manifest")) {
			t.Errorf("abandoned attempt blob %s kept", n)
		}
	}
	e.verifyBackup(e.row(testTenant, done.BackupID))
	if b := e.row(testTenant, staleRunning.BackupID); b.Status != catalog.StatusFailed || b.Error == nil {
		t.Errorf("stale running row = %+v", b)
	}
	if b := e.row(testTenant, liveRunning.BackupID); b.Status != catalog.StatusRunning {
		t.Errorf("live running row = %+v", b)
	}
	if b := e.row(testTenant, failedOld.BackupID); b.Status != catalog.StatusFailed {
		t.Errorf("failed row not kept: %+v", b)
	}
	want := backup.SweepReport{StaleFailed: 1, DeletedBackups: 1, DeletedAttempts: 1, DeletedBlobs: 3, Orphans: 2, OrphanBlobs: 3}
	if rep != want {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
	recs := e.logs.Records("backup blobs without a catalog row were found and kept: they are never deleted automatically; check TABLE_BACKUPS and the table's contents")
	if len(recs) != 1 || recs[0]["orphanBackups"] != float64(2) || recs[0]["orphanBlobs"] != float64(3) || recs[0]["tenants"] != float64(1) {
		t.Errorf("orphan report = %v", recs)
	}

	// The stale backup marked failed now loses its blobs once 24 h old.
	e.clock.Advance(25 * time.Hour)
	rep, err = e.svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs([]string{kept[0], kept[5]}, slices.Concat(kept[1:5], kept[6:]))
	if rep.DeletedBackups != 2 || rep.Orphans != 2 { // failedNew and staleRunning
		t.Errorf("report a day later = %+v", rep)
	}
}

// A run that would delete the blobs of more than MaxDeleteFraction of a
// tenant's backups deletes nothing for that tenant (abandoned attempts
// included) and says why; other tenants are swept as usual.
func TestSweepBreaker(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	old := e.clock.Now().Add(-48 * time.Hour)
	chunk := "a1/chunks/records/0000000000"
	type tenantBlobs struct{ failed, completed, abandoned []string }
	mk := func(tenant string, failed, completed int) tenantBlobs {
		var tb tenantBlobs
		for range failed {
			b := e.mkRow(tenant, catalog.StatusFailed, old, nil)
			tb.failed = append(tb.failed, e.put(tenant, b.BackupID, chunk))
		}
		for range completed {
			b := e.mkRow(tenant, catalog.StatusCompleted, old, func(id string) string { return tenant + "/" + id + "/a1/manifest" })
			tb.completed = append(tb.completed, e.put(tenant, b.BackupID, chunk), e.put(tenant, b.BackupID, "a1/manifest"))
			tb.abandoned = append(tb.abandoned, e.put(tenant, b.BackupID, "a0/chunks/records/0000000000"))
		}
		return tb
	}
	tripped := mk("tripped", 3, 2) // 3 of 5 > 0.5
	swept := mk("swept", 2, 2)     // 2 of 4 = 0.5: allowed

	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs(append(swept.failed, swept.abandoned...), slices.Concat(tripped.failed, tripped.completed, tripped.abandoned, swept.completed))
	if rep.BreakerTenants != 1 || rep.DeletedBackups != 2 || rep.DeletedAttempts != 2 {
		t.Errorf("report = %+v", rep)
	}
	recs := e.logs.Records("backup sweep deleted nothing for the tenant: it would have deleted the blobs of more than RETENTION_MAX_DELETE_FRACTION of the tenant's backups")
	if len(recs) != 1 || recs[0]["tenant"] != "tripped" || recs[0]["wouldDelete"] != float64(3) || recs[0]["backups"] != float64(5) {
		t.Errorf("breaker log = %v", recs)
	}

	// A higher fraction lets the same run through.
	svc, _ := e.build(e.svcLogger(), func(o *backup.Options) { o.MaxDeleteFraction = 0.6 })
	rep, err = svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs(append(tripped.failed, tripped.abandoned...), slices.Concat(tripped.completed, swept.completed))
	if rep.BreakerTenants != 0 || rep.DeletedBackups != 3 {
		t.Errorf("report with 0.6 = %+v", rep)
	}
}

// A Backups table rolled back to a point when a completed backup was still
// running: the sweep fails the stale row as usual, but the blobs hold a
// manifest, so they are kept (reported as suspect) however old the row.
func TestSweepKeepsCommittedBlobsOfRolledBackRow(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 3, 1)
	job := e.request(testTenant)
	if rec := e.deliver(ctx, e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d", rec.Code)
	}
	b := e.row(testTenant, job.BackupID)
	names := e.blobNames(testTenant + "/")
	b.Status, b.CompletedAt, b.ManifestBlob = catalog.StatusRunning, time.Time{}, ""
	must(t, e.cat.UpdateBackup(ctx, b))

	for range 3 {
		e.clock.Advance(30 * time.Hour)
		if _, err := e.svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.row(testTenant, job.BackupID); got.Status != catalog.StatusFailed {
		t.Errorf("row = %s, want failed", got.Status)
	}
	if got := e.blobNames(testTenant + "/"); !slices.Equal(got, names) {
		t.Errorf("blobs %v, want %v", got, names)
	}
	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	if rep.Suspect != 1 || rep.DeletedBlobs != 0 {
		t.Errorf("report = %+v", rep)
	}
}

// A completed row whose committed manifest is not in storage (an edited
// row, a different container) deletes none of the backup's blobs.
func TestSweepKeepsBlobsWhenCommittedManifestMissing(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	b := e.mkRow(testTenant, catalog.StatusCompleted, e.clock.Now().Add(-48*time.Hour),
		func(id string) string { return testTenant + "/" + id + "/a9/manifest" })
	kept := []string{e.put(testTenant, b.BackupID, "a1/manifest"), e.put(testTenant, b.BackupID, "a1/chunks/records/0000000000")}
	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs(nil, kept)
	if rep.Suspect != 1 || rep.DeletedBlobs != 0 {
		t.Errorf("report = %+v", rep)
	}
}

// The worker deletes nothing it did not write: blobs already under the
// backup's id (a row lost and re-created for the same id) survive both a
// successful and a failed attempt; once a row commits another attempt, the
// sweep deletes them as abandoned.
func TestWorkerDeletesOnlyItsOwnAttempt(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 3, 1)
	job := e.request(testTenant)
	earlier := []string{e.put(testTenant, job.BackupID, "aold/chunks/records/0000000000"), e.put(testTenant, job.BackupID, "aold/manifest")}
	if rec := e.deliver(ctx, e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d", rec.Code)
	}
	e.checkBlobs(nil, earlier)
	if _, err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	e.checkBlobs(earlier, nil)
	e.verifyBackup(e.row(testTenant, job.BackupID))

	// A refused customer key fails the backup at once (final).
	e.enableBYOK(testTenant, false)
	must(t, e.emu.SetEnabled(custVault, "k", "", false))
	job = e.request(testTenant)
	earlier = []string{e.put(testTenant, job.BackupID, "aold/chunks/records/0000000000"), e.put(testTenant, job.BackupID, "aold/manifest")}
	if rec := e.deliver(ctx, e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d", rec.Code)
	}
	if b := e.row(testTenant, job.BackupID); b.Status != catalog.StatusFailed {
		t.Fatalf("row = %s, want failed", b.Status)
	}
	e.checkBlobs(nil, earlier)
}

// A re-wrapped backup's row names rewrap-manifest-<n> (its original
// manifest deleted): the sweep treats it as committed, keeps its blobs and
// still deletes its abandoned attempts.
func TestSweepKnowsRewrappedManifests(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	b := e.mkRow(testTenant, catalog.StatusCompleted, e.clock.Now().Add(-48*time.Hour),
		func(id string) string { return testTenant + "/" + id + "/a1/rewrap-manifest-000001" })
	kept := []string{e.put(testTenant, b.BackupID, "a1/rewrap-manifest-000001"), e.put(testTenant, b.BackupID, "a1/chunks/records/0000000000")}
	gone := []string{e.put(testTenant, b.BackupID, "a0/chunks/records/0000000000")}
	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	e.checkBlobs(gone, kept)
	if rep.Suspect != 0 {
		t.Errorf("report = %+v", rep)
	}
}
