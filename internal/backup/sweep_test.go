package backup_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// The sweep deletes blobs of failed and row-less backups once older than
// the grace period and abandoned attempts of completed backups, keeps
// everything else, and fails running backups whose heartbeat is that old.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 3, 1)
	done := e.request(testTenant)
	if rec := e.deliver(ctx, e.handler, done, 1); rec.Code != 200 {
		t.Fatalf("worker = %d", rec.Code)
	}
	committed := e.row(testTenant, done.BackupID)
	abandoned := testTenant + "/" + done.BackupID + "/adeadbeef00000000/chunks/files/0000000000"

	old := time.Now().Add(-3 * time.Hour)
	mk := func(status catalog.Status, at time.Time) *catalog.Backup {
		b := catalog.NewBackup(testTenant, catalog.ReasonManual, at)
		must(t, e.cat.CreateBackup(ctx, b))
		switch status {
		case catalog.StatusRunning:
			must(t, b.Start("a1", at, false))
		case catalog.StatusFailed:
			must(t, b.Fail(at, errcode.Detail{Code: errcode.Internal, Message: "x"}))
		}
		if status != catalog.StatusQueued {
			must(t, e.cat.UpdateBackup(ctx, b))
		}
		return b
	}
	failedOld, failedNew := mk(catalog.StatusFailed, old), mk(catalog.StatusFailed, time.Now())
	queued := mk(catalog.StatusQueued, old)
	staleRunning, liveRunning := mk(catalog.StatusRunning, old), mk(catalog.StatusRunning, time.Now())
	orphanOld, orphanNew := catalog.NewID(old), catalog.NewID(time.Now())

	put := func(id string) string {
		name := testTenant + "/" + id + "/a1/chunks/records/0000000000"
		must(t, e.blobs.PutBlob(ctx, name, []byte("sealed")))
		return name
	}
	must(t, e.blobs.PutBlob(ctx, abandoned, []byte("zombie")))
	gone := []string{put(failedOld.BackupID), put(orphanOld), abandoned}
	kept := []string{put(failedNew.BackupID), put(orphanNew), put(queued.BackupID), put(liveRunning.BackupID)}
	must(t, e.blobs.PutBlob(ctx, "not-a-tenant!/x", []byte("foreign")))
	kept = append(kept, "not-a-tenant!/x")

	rep, err := e.svc.Sweep(ctx)
	must(t, err)
	names := e.blobNames("")
	for _, n := range gone {
		if slices.Contains(names, n) {
			t.Errorf("garbage %s kept", n)
		}
	}
	for _, n := range kept {
		if !slices.Contains(names, n) {
			t.Errorf("%s deleted", n)
		}
	}
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
	if rep.StaleFailed != 1 || rep.DeletedBackups != 3 || rep.DeletedBlobs != 3 {
		t.Errorf("report = %+v", rep)
	}
}
