package restore_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/api"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/restore"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	audittable "github.com/twinit/byok-backup/internal/audit/aztable"
	byoktable "github.com/twinit/byok-backup/internal/byok/aztable"
)

type listJSON struct {
	Restores          []restoreJSON `json:"restores"`
	ContinuationToken *string       `json:"continuationToken"`
}

// TestListRestoresNewestFirstPaged: GET …/restores lists the source
// tenant's restores newest first in pages, with a reader's token, through
// the real routes; bad paging input is InvalidRequest, another tenant's
// token is Forbidden.
func TestListRestoresNewestFirstPaged(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 1, 1)
	b := e.makeBackup("acme", keywrap.Platform)
	op := e.token("acme", auth.RoleBackupOperator)
	var ids []string // oldest first
	for i := range 5 {
		body := map[string]any{"backupId": b.BackupID, "dryRun": true}
		if i == 2 {
			body = map[string]any{"backupId": b.BackupID, "mode": "merge"}
		}
		ids = append(ids, e.startRestore(op, "acme", body))
		e.clock.advance(time.Millisecond) // ids sort by time
	}
	reader := e.token("acme", auth.RoleRead)
	list := func(query string, tok string) (*httptestResult, listJSON) {
		rec := e.do("GET", "/api/tenants/acme/restores"+query, tok, nil)
		var out listJSON
		if rec.Code == http.StatusOK {
			must(t, json.Unmarshal(rec.Body.Bytes(), &out))
			if !strings.Contains(rec.Body.String(), `"continuationToken":`) {
				t.Fatalf("list body lacks continuationToken: %s", rec.Body)
			}
		}
		return &httptestResult{rec.Code, rec.Body.String()}, out
	}
	var got []string
	var sizes []int
	token := ""
	for range 5 {
		q := "?maxResults=2"
		if token != "" {
			q += "&continuationToken=" + url.QueryEscape(token)
		}
		res, page := list(q, reader)
		if res.code != http.StatusOK {
			t.Fatalf("GET restores%s = %d %s", q, res.code, res.body)
		}
		sizes = append(sizes, len(page.Restores))
		for _, r := range page.Restores {
			if r.Tenant != "acme" || r.BackupID != b.BackupID || r.State != "queued" {
				t.Fatalf("listed %+v", r)
			}
			got = append(got, r.RestoreID)
		}
		if page.ContinuationToken == nil {
			break
		}
		token = *page.ContinuationToken
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(sizes, []int{2, 2, 1}) {
		t.Fatalf("pages %v ids %v, want [2 2 1] %v", sizes, got, want)
	}
	// Default page: everything; the merge restore shows its mode.
	if res, page := list("", reader); res.code != http.StatusOK || len(page.Restores) != 5 || page.Restores[2].Mode != "merge" || !page.Restores[0].DryRun {
		t.Fatalf("default page = %d %s", res.code, res.body)
	}
	// A tenant with none: an empty array, null token.
	rec := e.do("GET", "/api/tenants/other/restores", e.token("other", auth.RoleRead), nil)
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"restores":[],"continuationToken":null}` {
		t.Fatalf("empty list = %d %s", rec.Code, rec.Body)
	}
	for _, q := range []string{"?maxResults=0", "?maxResults=1001", "?maxResults=x", "?maxResults=1&maxResults=2", "?continuationToken=nope"} {
		wantError(t, e, "GET", "/api/tenants/acme/restores"+q, reader, nil, http.StatusBadRequest, "InvalidRequest")
	}
	wantError(t, e, "GET", "/api/tenants/acme/restores", e.token("other", auth.RoleRead), nil, http.StatusForbidden, "Forbidden")
	wantError(t, e, "GET", "/api/tenants/acme/restores", "", nil, http.StatusUnauthorized, "Unauthorized")
	if res, page := list("", e.token("", auth.RolePlatformOperator)); res.code != http.StatusOK || len(page.Restores) != 5 {
		t.Fatalf("platform operator list = %d %s", res.code, res.body)
	}
}

type httptestResult struct {
	code int
	body string
}

// TestSweepFailsStuckRestores: a restore left running by a crashed last
// delivery is failed by the sweep once its heartbeat is older than
// SweepGrace, with a message that says what to do; live, fresh and ended
// restores are left alone, and a late redelivery does not run it again.
func TestSweepFailsStuckRestores(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	mk := func(dryRun bool, state catalog.RestoreState) *catalog.Restore {
		now := e.clock.now()
		r := catalog.NewRestore("acme", catalog.NewID(now), "acme-sandbox", catalog.ModeReplace, dryRun, now)
		must(t, e.cat.CreateRestore(ctx, r))
		if state == catalog.RestoreQueued {
			return r
		}
		must(t, r.Start("a1", now, false))
		if state == catalog.RestoreSucceeded {
			must(t, r.Succeed(now))
		}
		must(t, e.cat.UpdateRestore(ctx, r))
		return r
	}
	stuck := mk(false, catalog.RestoreRunning)
	stuckDry := mk(true, catalog.RestoreRunning)
	done := mk(false, catalog.RestoreSucceeded)
	queued := mk(false, catalog.RestoreQueued)
	e.clock.advance(30 * time.Minute)
	if rep, err := e.svc.Sweep(ctx); err != nil || rep != (restore.SweepReport{}) {
		t.Fatalf("sweep within the grace = %+v, %v; want nothing done", rep, err)
	}
	e.clock.advance(31 * time.Minute)
	alive := mk(false, catalog.RestoreRunning) // started just now
	rep, err := e.svc.Sweep(ctx)
	if err != nil || rep.Failed != 2 || rep.Stale != 2 {
		t.Fatalf("sweep = %+v, %v; want 2 stale restores failed", rep, err)
	}
	for _, r := range []*catalog.Restore{stuck, stuckDry} {
		st := e.status("acme", r.RestoreID)
		msg := wantFailed(t, st, "Internal")
		if !strings.Contains(msg, "Start the restore again") || !strings.Contains(msg, "acme-sandbox") || st.CompletedAt == nil {
			t.Fatalf("stuck restore status %+v", st)
		}
	}
	for r, state := range map[*catalog.Restore]string{done: "succeeded", queued: "queued", alive: "running"} {
		if st := e.status("acme", r.RestoreID); st.State != state {
			t.Fatalf("restore %s is %s after the sweep, want %s", r.RestoreID, st.State, state)
		}
	}
	// A redelivery of the stuck restore's message acknowledges it and runs nothing.
	e.queue.jobs = append(e.queue.jobs, jobqueueRestoreJob("acme", stuck.RestoreID))
	if code := e.deliver(5); code != http.StatusOK {
		t.Fatalf("late redelivery = %d", code)
	}
	if st := e.status("acme", stuck.RestoreID); st.State != "failed" {
		t.Fatalf("late redelivery changed the failed restore: %+v", st)
	}
	// The timer form runs the same sweep.
	if err := e.svc.RunSweep(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCustomerKeyBackupRestoresAfterByokTurnedOff: BYOK on, a backup by the
// real pipeline wraps with the customer key; DELETE /byok turns BYOK off
// (clearing the settings); the customer key stays enabled and granted, so
// the restore succeeds with it, signing in to the Entra tenant recorded in
// the backup row.
func TestCustomerKeyBackupRestoresAfterByokTurnedOff(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	tables, err := aztables.NewServiceClientFromConnectionString(azuriteFor(t).ConnectionString(), nil)
	must(t, err)
	n := seq.Add(1)
	table := func(name string) *aztables.Client {
		c := tables.NewClient(fmt.Sprintf("%sOff%d", name, n))
		_, err := c.CreateTable(ctx, nil)
		must(t, err)
		return c
	}
	auditLog := audit.New(audittable.New(table("KeyAudit")), nil)
	byokSvc, err := byok.New(byok.Options{Store: byoktable.New(table("ByokSettings")),
		Validator: audit.NewValidator(e.wrapper, auditLog, e.log), VaultURLTemplate: e.emu.URLTemplate(),
		AppClientID: appID, Logger: e.log})
	must(t, err)
	e.wire(byokSvc, func(h api.HandleAPI) { api.Byok(h, byokSvc) })
	admin := e.token("acme", auth.RoleAdmin)
	put := e.do("PUT", "/api/tenants/acme/byok", admin, map[string]any{
		"keyVaultName": vault, "keyName": keyName, "tenantId": entraTenant, "fallbackToPlatformKey": false})
	if put.Code != http.StatusOK {
		t.Fatalf("PUT byok = %d %s", put.Code, put.Body)
	}

	e.seed("acme", 12, 3)
	want := e.snapshot("acme")
	bs, err := backup.New(backup.Options{
		Source: e.store, Catalog: e.cat, Blobs: e.blobs, Wrapper: e.wrapper, Keys: byokSvc,
		PlatformKey: e.platRef, Leases: e.leases, Queue: e.queue, Logger: e.log, ChunkSize: 2048, Parallelism: 2,
	})
	must(t, err)
	b, err := bs.Request(ctx, "acme", catalog.ReasonManual)
	must(t, err)
	must(t, bs.Run(ctx, e.queue.backups[len(e.queue.backups)-1], 1))
	b, err = e.cat.GetBackup(ctx, "acme", b.BackupID)
	must(t, err)
	if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Customer || b.EntraTenantID != entraTenant {
		t.Fatalf("backup = %+v, want completed with the customer key and Entra tenant %s", b, entraTenant)
	}

	del := e.do("DELETE", "/api/tenants/acme/byok", admin, nil)
	if del.Code != http.StatusOK || !strings.Contains(del.Body.String(), `"state":"disabled"`) {
		t.Fatalf("DELETE byok = %d %s", del.Code, del.Body)
	}
	if _, _, enabled, err := byokSvc.CustomerKey(ctx, "acme"); err != nil || enabled {
		t.Fatalf("BYOK still on after DELETE (%v)", err)
	}
	e.disturb("acme")
	unwraps := e.emu.CountOps(vault, "unwrapKey")
	st := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("restored tenant differs: %s", d)
	}
	if n := e.emu.CountOps(vault, "unwrapKey") - unwraps; n != 1 {
		t.Fatalf("customer key unwraps during the restore = %d, want 1", n)
	}

	// Revoking the grant still stops it: the customer's control is the key.
	must(t, e.emu.Revoke(vault, customerToken()))
	wantFailed(t, e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), "CustomerKeyUnavailable")
}

func jobqueueRestoreJob(tenant, id string) jobqueue.RestoreJob {
	return jobqueue.RestoreJob{Tenant: tenant, RestoreID: id}
}
