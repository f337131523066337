package backup_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/twinit/byok-backup/internal/catalog"
)

// finish sets a backup's status directly (a fixture: it skips the state
// machine), as if its worker had got that far.
func (e *env) finish(id string, st catalog.Status) {
	e.t.Helper()
	b := e.row(testTenant, id)
	b.Status = st
	if st == catalog.StatusCompleted || st == catalog.StatusFailed {
		b.CompletedAt = e.clock.Now()
	}
	must(e.t, e.cat.UpdateBackup(e.t.Context(), b))
}

// postBackup POSTs …/backups as the tenant's operator and returns the
// answer's backupId and status, checking the 202 and its Location.
func (e *env) postBackup() (id, status string) {
	e.t.Helper()
	op, err := e.issuer.Token(testTenant, "backup.operator")
	must(e.t, err)
	rec := e.http(http.MethodPost, "/api/tenants/"+testTenant+"/backups", op, "")
	var body struct{ BackupID, Status string }
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusAccepted || !catalog.ValidID(body.BackupID) ||
		rec.Header().Get("Location") != "/api/tenants/"+testTenant+"/backups/"+body.BackupID {
		e.t.Errorf("POST = %d %s, Location %q", rec.Code, rec.Body, rec.Header().Get("Location"))
	}
	return body.BackupID, body.Status
}

// TestPostBackupJoinsQueuedOrRunning: while the tenant has a backup queued
// or running, POST …/backups starts nothing and answers 202 with that
// backup, its status and its Location (contract §2); once it has ended, a
// POST queues a new one.
func TestPostBackupJoinsQueuedOrRunning(t *testing.T) {
	e := newEnv(t)
	first, st := e.postBackup()
	if st != "queued" {
		t.Fatalf("first POST status %q", st)
	}
	if id, st := e.postBackup(); id != first || st != "queued" {
		t.Fatalf("POST while queued = %s %s, want %s queued", id, st, first)
	}
	e.finish(first, catalog.StatusRunning)
	if id, st := e.postBackup(); id != first || st != "running" {
		t.Fatalf("POST while running = %s %s, want %s running", id, st, first)
	}
	if jobs := e.received(); len(jobs) != 1 || jobs[0].BackupID != first {
		t.Fatalf("jobs = %+v, want only %s's", jobs, first)
	}
	e.finish(first, catalog.StatusCompleted)
	second, st := e.postBackup()
	if second == first || st != "queued" {
		t.Fatalf("POST after completion = %s %s, want a new queued backup", second, st)
	}
	e.finish(second, catalog.StatusFailed)
	if third, _ := e.postBackup(); third == second || third == first {
		t.Fatalf("POST after a failure answered the old backup %s", third)
	}
}

// TestConcurrentPostsMakeOneBackup: POSTs racing each other (as from two
// instances) queue exactly one backup and all answer with it.
func TestConcurrentPostsMakeOneBackup(t *testing.T) {
	e := newEnv(t)
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i], _ = e.postBackup() })
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent POSTs answered different backups: %v", ids)
		}
	}
	page, err := e.cat.ListBackups(t.Context(), testTenant, catalog.ListOptions{})
	must(t, err)
	if len(page.Backups) != 1 || page.Backups[0].BackupID != ids[0] {
		t.Fatalf("%d backup rows after %d concurrent POSTs, want 1", len(page.Backups), n)
	}
	if jobs := e.received(); len(jobs) != 1 {
		t.Fatalf("%d jobs queued, want 1", len(jobs))
	}
}
