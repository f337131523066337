package main

import (
	"encoding/json"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
)

// QUEUE_BACKUP_JOBS and QUEUE_RESTORE_JOBS name the queues the wired app
// enqueues to (the triggers read the same settings): scheduled backups and
// restores land on the configured queues and never on the defaults.
func TestQueueSettingsNameTheJobQueues(t *testing.T) {
	e := newSweepEnv(t)
	ctx := t.Context()
	h, cfg := e.handler(map[string]string{"QUEUE_BACKUP_JOBS": "nightly-backups", "QUEUE_RESTORE_JOBS": "nightly-restores"})
	if cfg.Names.QueueBackupJobs != "nightly-backups" || cfg.Names.QueueRestoreJobs != "nightly-restores" {
		t.Fatalf("names = %+v", cfg.Names)
	}

	dir := tenantstable.New(e.tables.NewClient(cfg.Names.TableTenants), nil)
	store := assetsazure.New(e.tables.NewClient(cfg.Names.TableAssets), e.blobs.ServiceClient().NewContainerClient(cfg.Names.ContainerAssets), nil)
	check(t, store.Ensure(ctx))
	check(t, dir.Put(ctx, tenants.Tenant{ID: "acme", BackupEnabled: true}))
	_, err := seed.Tenant(ctx, store, "acme", seed.Options{Records: 5, Files: 1, FileSize: 4 << 10, Seed: 3})
	check(t, err)

	e.fireTimer(h, "BackupScheduler")
	if n := e.runJobs(h, cfg); n != 1 { // reads cfg.Names.QueueBackupJobs
		t.Fatalf("ran %d jobs from %s, want 1", n, cfg.Names.QueueBackupJobs)
	}

	tok, err := e.issuer.Token("acme", "backup.operator")
	check(t, err)
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := call(http.MethodGet, "/api/tenants/acme/backups", "")
	var page struct {
		Backups []struct{ BackupID, Status string }
	}
	check(t, json.Unmarshal(rec.Body.Bytes(), &page))
	if rec.Code != 200 || len(page.Backups) != 1 || page.Backups[0].Status != "completed" {
		t.Fatalf("backups = %d %s", rec.Code, rec.Body)
	}
	if rec := call(http.MethodPost, "/api/tenants/acme/restores", `{"backupId":"`+page.Backups[0].BackupID+`","dryRun":true}`); rec.Code != http.StatusAccepted {
		t.Fatalf("POST restores = %d %s", rec.Code, rec.Body)
	}

	for queue, want := range map[string]int{
		"nightly-restores": 1, "nightly-backups": 0,
		jobqueue.BackupQueue: 0, jobqueue.RestoreQueue: 0,
	} {
		if got := e.waiting(queue); got != want {
			t.Errorf("queue %s holds %d messages, want %d", queue, got, want)
		}
	}
}

// waiting counts the messages on queue; a queue never created holds none.
func (e *sweepEnv) waiting(queue string) int {
	e.t.Helper()
	n := int32(32)
	resp, err := e.queues.NewQueueClient(queue).PeekMessages(e.t.Context(), &azqueue.PeekMessagesOptions{NumberOfMessages: &n})
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		return 0
	}
	check(e.t, err)
	return len(resp.Messages)
}
