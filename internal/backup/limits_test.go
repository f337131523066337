package backup_test

import (
	"encoding/json"
	"errors"
	"fmt"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
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
// backup, its status and its Location (API.md §2); once it has ended, a
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

// TestUnknownTenantJobWritesNothing: a backup-jobs message for a tenant
// with no Tenants row and no catalog row fails every delivery (so the host
// moves it to backup-jobs-poison) with one clear log line each, and writes
// no row and no blob. Rows made by POST (for a tenant not in Tenants) and
// jobs for a tenant whose backups are disabled still run.
func TestUnknownTenantJobWritesNothing(t *testing.T) {
	e := newEnv(t)
	ghost := jobqueue.BackupJob{Tenant: "ghost", BackupID: "ops-script-0002", Reason: catalog.ReasonManual, RequestedAt: time.Now().UTC()}
	for i := 1; i <= backup.DefaultMaxDequeueCount; i++ {
		if rec := e.deliver(t.Context(), e.handler, ghost, i); rec.Code/100 == 2 {
			t.Fatalf("delivery %d of a job for an unknown tenant = %d, want a failed invocation", i, rec.Code)
		}
	}
	if _, err := e.cat.GetBackup(t.Context(), "ghost", ghost.BackupID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("row of the unknown tenant's job: %v, want none", err)
	}
	if page, err := e.cat.ListBackups(t.Context(), "ghost", catalog.ListOptions{}); err != nil || len(page.Backups) != 0 {
		t.Fatalf("unknown tenant has %d rows (%v)", len(page.Backups), err)
	}
	if names := e.blobNames("ghost/"); len(names) != 0 {
		t.Fatalf("blobs written for the unknown tenant: %d", len(names))
	}
	recs := e.logs.Records("backup job for an unknown tenant (no Tenants row, no catalog row): nothing written; it will end in the poison queue")
	if len(recs) != backup.DefaultMaxDequeueCount || recs[0]["tenant"] != "ghost" || recs[0]["level"] != "ERROR" {
		t.Fatalf("%d log lines for the unknown tenant's job (%v), want %d at ERROR naming the tenant", len(recs), recs, backup.DefaultMaxDequeueCount)
	}

	// POST's row comes first, so a tenant absent from Tenants is backed up.
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("POSTed backup of a tenant not in Tenants = %d %s", rec.Code, rec.Body)
	}
	if b := e.row(testTenant, job.BackupID); b.Status != catalog.StatusCompleted {
		t.Fatalf("POSTed backup = %s %+v", b.Status, b.Error)
	}
	// A tenant row with backups disabled is still a tenant: adopted.
	must(t, e.dir.Put(t.Context(), tenants.Tenant{ID: "paused", BackupEnabled: false}))
	paused := jobqueue.BackupJob{Tenant: "paused", BackupID: "ops-script-0003", Reason: catalog.ReasonManual, RequestedAt: time.Now().UTC()}
	if rec := e.deliver(t.Context(), e.handler, paused, 1); rec.Code != 200 {
		t.Fatalf("job for a disabled tenant = %d %s", rec.Code, rec.Body)
	}
	if b := e.row("paused", paused.BackupID); b.Status != catalog.StatusCompleted {
		t.Fatalf("disabled tenant's adopted job = %s", b.Status)
	}
}

// TestMissingSourceFailsBackup: a missing assets table or container (a
// configuration slip) fails the backup with a cause naming the setting,
// instead of completing an empty backup that a `replace` restore would
// turn into a wiped tenant. It is retried like any storage failure (the
// slip may be fixed meanwhile) and fails on the last delivery.
func TestMissingSourceFailsBackup(t *testing.T) {
	cs := storage.ConnectionString()
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	must(t, err)
	bsvc, err := azblob.NewClientFromConnectionString(cs, nil)
	must(t, err)
	for _, c := range []struct{ name, setting string }{{"table", "TABLE_ASSETS"}, {"container", "CONTAINER_ASSETS"}} {
		t.Run(c.name, func(t *testing.T) {
			n := seq.Add(1)
			table, cont := tsvc.NewClient(fmt.Sprintf("SrcAssets%d", n)), bsvc.ServiceClient().NewContainerClient(fmt.Sprintf("src-assets-%d", n))
			src := assetsazure.New(table, cont, nil)
			must(t, src.Ensure(t.Context()))
			_, err := seed.Tenant(t.Context(), src, testTenant, seed.Options{Records: 3, Files: 2, FileSize: 1 << 10, Seed: 1})
			must(t, err)
			if c.name == "table" {
				_, err = table.Delete(t.Context(), nil)
			} else {
				_, err = cont.Delete(t.Context(), nil)
			}
			must(t, err)
			e := newEnv(t, func(o *backup.Options) { o.Source = src })
			job := e.request(testTenant)
			if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code/100 == 2 {
				t.Fatalf("first delivery = %d, want a failed invocation (retry)", rec.Code)
			}
			if b := e.row(testTenant, job.BackupID); b.Status == catalog.StatusCompleted {
				t.Fatal("backup of a missing source completed")
			}
			if rec := e.deliver(t.Context(), e.handler, job, backup.DefaultMaxDequeueCount); rec.Code != 200 {
				t.Fatalf("last delivery = %d %s", rec.Code, rec.Body)
			}
			b := e.row(testTenant, job.BackupID)
			if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.ServiceUnavailable ||
				!strings.Contains(b.Error.Message, c.setting) || b.ManifestBlob != "" {
				t.Fatalf("backup = %s %+v, want failed with ServiceUnavailable naming %s", b.Status, b.Error, c.setting)
			}
			// Nothing may claim to be a backup. A chunk PUT cancelled by the
			// failure can still land after the attempt's folder was deleted
			// (the store finishes a request the client gave up on); such
			// leftovers sit under a failed row, which the sweep clears after
			// 24 h (TestSweep).
			for _, n := range e.blobNames(testTenant + "/") {
				if strings.HasSuffix(n, "/manifest") {
					t.Fatalf("the failed backup left a manifest: %s", n)
				}
			}
		})
	}
}
