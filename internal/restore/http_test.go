package restore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/keywrap"
)

func wantError(t *testing.T, e *env, method, path, tok string, body any, status int, code string) {
	t.Helper()
	rec := e.do(method, path, tok, body)
	var out struct {
		Error struct{ Code, Message string }
	}
	if rec.Code != status || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Error.Code != code || out.Error.Message == "" {
		t.Fatalf("%s %s = %d %s, want %d %s", method, path, rec.Code, rec.Body, status, code)
	}
}

// TestCrossTenantRights: a restore into another tenant needs the right on
// both tenants; with tenant-scoped tokens only platform.operator has it.
func TestCrossTenantRights(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 1, 0)
	b := e.makeBackup("acme", keywrap.Platform)
	into := func(target string) map[string]any {
		return map[string]any{"backupId": b.BackupID, "targetTenant": target, "mode": "merge"}
	}
	const path = "/api/tenants/acme/restores"
	wantError(t, e, "POST", path, e.token("acme", auth.RoleBackupOperator), into("acme-sandbox"), 403, "Forbidden")
	wantError(t, e, "POST", path, e.token("acme-sandbox", auth.RoleBackupOperator), into("acme-sandbox"), 403, "Forbidden")
	wantError(t, e, "POST", path, e.token("acme", auth.RoleRead), into("acme"), 403, "Forbidden")
	wantError(t, e, "POST", path, e.token("acme", auth.RoleAdmin), into("acme"), 403, "Forbidden")
	wantError(t, e, "POST", path, "", into("acme"), 401, "Unauthorized")
	if len(e.queue.jobs) != 0 {
		t.Fatal("a refused request enqueued a job")
	}
	e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", into("acme"))
	e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	id := e.startRestore(e.token("", auth.RolePlatformOperator), "acme", into("acme-sandbox"))
	// The status lives under the source tenant; readers of acme see it.
	if st := e.status("acme", id); st.TargetTenant != "acme-sandbox" || st.State != "queued" {
		t.Fatalf("status = %+v", st)
	}
	wantError(t, e, "GET", "/api/tenants/acme-sandbox/restores/"+id, e.token("acme-sandbox", auth.RoleRead), nil, 404, "NotFound")
	wantError(t, e, "GET", "/api/tenants/acme/restores/"+id, e.token("acme-sandbox", auth.RoleRead), nil, 403, "Forbidden")
}

func TestPostValidation(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 1, 0)
	b := e.makeBackup("acme", keywrap.Platform)
	running := catalog.NewBackup("acme", catalog.ReasonManual, time.Now())
	must(t, e.cat.CreateBackup(t.Context(), running))
	// A soft-deleted and a purged backup (API.md §6: 409 BackupDeleted).
	deleted, purged := e.makeBackup("acme", keywrap.Platform), e.makeBackup("acme", keywrap.Platform)
	for _, d := range []*catalog.Backup{deleted, purged} {
		must(t, d.SoftDelete(time.Now(), time.Now().Add(time.Hour), "ops"))
	}
	must(t, purged.StartPurge(time.Now().Add(2*time.Hour)))
	must(t, purged.Purge(time.Now()))
	must(t, e.cat.UpdateBackup(t.Context(), deleted))
	must(t, e.cat.UpdateBackup(t.Context(), purged))
	op := e.token("acme", auth.RoleBackupOperator)
	const path = "/api/tenants/acme/restores"
	for name, c := range map[string]struct {
		body   any
		status int
		code   string
	}{
		"no body":           {nil, 400, "InvalidRequest"},
		"bad backupId":      {map[string]any{"backupId": "../x", "mode": "merge"}, 400, "InvalidRequest"},
		"no mode":           {map[string]any{"backupId": b.BackupID}, 400, "InvalidRequest"},
		"bad mode":          {map[string]any{"backupId": b.BackupID, "mode": "overwrite"}, 400, "InvalidRequest"},
		"bad targetTenant":  {map[string]any{"backupId": b.BackupID, "mode": "merge", "targetTenant": "Acme!"}, 400, "InvalidRequest"},
		"unknown field":     {map[string]any{"backupId": b.BackupID, "mode": "merge", "force": true}, 400, "InvalidRequest"},
		"dryRun not bool":   {map[string]any{"backupId": b.BackupID, "dryRun": "yes"}, 400, "InvalidRequest"},
		"unknown backup":    {map[string]any{"backupId": catalog.NewID(time.Now()), "mode": "merge"}, 404, "BackupNotFound"},
		"backup not ended":  {map[string]any{"backupId": running.BackupID, "mode": "merge"}, 409, "BackupIncomplete"},
		"deleted backup":    {map[string]any{"backupId": deleted.BackupID, "mode": "merge"}, 409, "BackupDeleted"},
		"deleted, dry run":  {map[string]any{"backupId": deleted.BackupID, "dryRun": true}, 409, "BackupDeleted"},
		"purged backup":     {map[string]any{"backupId": purged.BackupID, "mode": "replace"}, 409, "BackupDeleted"},
		"other tenant's id": {map[string]any{"backupId": b.BackupID, "mode": "merge"}, 404, "BackupNotFound"},
	} {
		t.Run(name, func(t *testing.T) {
			p, tok := path, op
			if name == "other tenant's id" {
				p, tok = "/api/tenants/globex/restores", e.token("globex", auth.RoleBackupOperator)
			}
			wantError(t, e, "POST", p, tok, c.body, c.status, c.code)
		})
	}
	if len(e.queue.jobs) != 0 {
		t.Fatal("a refused request enqueued a job")
	}
	wantError(t, e, "GET", path+"/.not-an-id", op, nil, 400, "InvalidRequest")
	wantError(t, e, "GET", path+"/"+catalog.NewID(time.Now()), op, nil, 404, "NotFound")
	rec := e.do("GET", path+"/"+catalog.NewID(time.Now()), op, nil)
	if strings.Contains(rec.Body.String(), "RESPONSE") {
		t.Fatal("Azure response text in an error body")
	}
}

// TestClientGoneBetweenRowAndMessage: a caller that disconnects after the
// restore row is written still gets its message queued (found by the kill
// soak): otherwise the row stayed queued with nothing to ever run it.
func TestClientGoneBetweenRowAndMessage(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 1, 0)
	b := e.makeBackup("acme", keywrap.Platform)
	ctx, cancel := context.WithCancel(t.Context())
	e.queue.beforeEnqueue = cancel
	rec := e.doCtx(ctx, "POST", "/api/tenants/acme/restores", e.token("acme", auth.RoleBackupOperator),
		map[string]any{"backupId": b.BackupID, "dryRun": true})
	e.queue.beforeEnqueue = nil
	if rec.Code != 202 || len(e.queue.jobs) != 1 {
		t.Fatalf("POST with the client gone = %d %s, %d jobs queued; want 202 and 1", rec.Code, rec.Body, len(e.queue.jobs))
	}
	if st := e.status("acme", e.queue.jobs[0].RestoreID); st.State != "queued" {
		t.Fatalf("status = %+v", st)
	}
}

// TestDeletedBetweenPostAndRun: a backup soft-deleted after its restore
// was accepted is not restored when the job runs: the restore fails with
// BackupDeleted and the target is untouched.
func TestDeletedBetweenPostAndRun(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 1, 0)
	b := e.makeBackup("acme", keywrap.Platform)
	id := e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
	row, err := e.cat.GetBackup(t.Context(), "acme", b.BackupID)
	must(t, err)
	must(t, row.SoftDelete(time.Now(), time.Now().Add(time.Hour), "ops"))
	must(t, e.cat.UpdateBackup(t.Context(), row))
	if code := e.deliver(1); code != 200 {
		t.Fatalf("RestoreWorker = %d", code)
	}
	if st := e.status("acme", id); st.State != "failed" || st.Error == nil || st.Error.Code != "BackupDeleted" {
		t.Fatalf("status = %+v", st)
	}
}
