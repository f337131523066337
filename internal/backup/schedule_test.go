package backup_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/tenants"
)

// The scheduler emits one job per enabled tenant (counting, not hiding,
// disabled and invalid rows); the jobs run; a second firing for the same
// slot starts no second backup.
func TestSchedulerFanOut(t *testing.T) {
	sched, err := config.ParseSchedule(config.DefaultBackupSchedule)
	must(t, err)
	e := newEnv(t, func(o *backup.Options) { o.Schedule = sched })
	ctx := t.Context()
	enabled := []string{"alpha", "bravo", "charlie"}
	for _, id := range enabled {
		must(t, e.dir.Put(ctx, tenants.Tenant{ID: id, BackupEnabled: true}))
	}
	must(t, e.dir.Put(ctx, tenants.Tenant{ID: "delta", BackupEnabled: false}))
	_, err = e.tenantT.UpsertEntity(ctx, mustJSON(t, map[string]any{"PartitionKey": tenants.Partition, "RowKey": "Not_Valid"}), nil)
	must(t, err)
	e.seed("alpha", 3, 1)

	at := time.Date(2026, 3, 4, 2, 0, 0, 412e6, time.UTC) // the 02:00 slot, fired late
	if rec := e.fireTimer(at); rec.Code != 200 {
		t.Fatalf("scheduler = %d %s", rec.Code, rec.Body)
	}
	jobs := e.received()
	var got []string
	for _, j := range jobs {
		got = append(got, j.Tenant)
		slot := time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)
		if j.BackupID != backup.ScheduledID(j.Tenant, slot) || j.Reason != catalog.ReasonSchedule {
			t.Errorf("job %+v: want the deterministic id of the 02:00 slot", j)
		}
		if b := e.row(j.Tenant, j.BackupID); b.Status != catalog.StatusQueued || b.Reason != catalog.ReasonSchedule {
			t.Errorf("row %+v", b)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, enabled) {
		t.Fatalf("jobs for %v, want %v", got, enabled)
	}
	logs := e.logs.Records("backup scheduler run")
	if len(logs) != 1 || logs[0]["enabled"] != 3.0 || logs[0]["disabled"] != 1.0 || logs[0]["invalid"] != 1.0 ||
		logs[0]["enqueued"] != 3.0 || logs[0]["failed"] != 0.0 {
		t.Errorf("scheduler log = %v", logs)
	}

	// The jobs run (and a duplicate delivery is harmless).
	for _, j := range jobs {
		for dq := 1; dq <= 2; dq++ {
			if rec := e.deliver(ctx, e.handler, j, dq); rec.Code != 200 {
				t.Fatalf("worker(%s) = %d %s", j.Tenant, rec.Code, rec.Body)
			}
		}
		e.verifyBackup(e.row(j.Tenant, j.BackupID))
	}
	// The timer fires again for the same slot (another instance, a retry).
	if rec := e.fireTimer(at.Add(20 * time.Second)); rec.Code != 200 {
		t.Fatalf("second firing = %d", rec.Code)
	}
	if again := e.received(); len(again) != 0 {
		t.Errorf("second firing for the same slot enqueued %v", again)
	}
	for _, id := range enabled {
		page, err := e.cat.ListBackups(ctx, id, catalog.ListOptions{})
		must(t, err)
		if len(page.Backups) != 1 {
			t.Errorf("tenant %s has %d backups, want 1", id, len(page.Backups))
		}
	}
	// The next slot is a new backup.
	if rec := e.fireTimer(at.Add(24 * time.Hour)); rec.Code != 200 {
		t.Fatalf("next day = %d", rec.Code)
	}
	if next := e.received(); len(next) != 3 || next[0].BackupID == jobs[0].BackupID {
		t.Errorf("next day's jobs = %v", next)
	}
}

// A scheduler run that created a row but died before its message is
// repaired by the next firing of the slot: still-queued rows are enqueued
// again. A queue outage is counted as failed and fails the invocation.
func TestSchedulerRequeuesQueuedAndReportsFailures(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	must(t, e.dir.Put(ctx, tenants.Tenant{ID: "alpha", BackupEnabled: true}))
	at := time.Date(2026, 3, 4, 2, 0, 5, 0, time.UTC)
	e.queue.fail.Store(true)
	if rec := e.fireTimer(at); rec.Code == 200 {
		t.Fatal("scheduler with a dead queue reported success")
	}
	if l := e.logs.Records("backup scheduler run"); len(l) != 1 || l[0]["failed"] != 1.0 || l[0]["enqueued"] != 0.0 {
		t.Errorf("log = %v", l)
	}
	id := backup.ScheduledID("alpha", at.Truncate(time.Minute))
	if b := e.row("alpha", id); b.Status != catalog.StatusQueued {
		t.Fatalf("row = %+v", b)
	}
	e.queue.fail.Store(false)
	if rec := e.fireTimer(at.Add(10 * time.Second)); rec.Code != 200 {
		t.Fatalf("second firing = %d %s", rec.Code, rec.Body)
	}
	if jobs := e.received(); len(jobs) != 1 || jobs[0].BackupID != id {
		t.Fatalf("jobs = %v", jobs)
	}
}

func TestScheduledID(t *testing.T) {
	slot := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	a := backup.ScheduledID("acme", slot)
	if !catalog.ValidID(a) || a != backup.ScheduledID("acme", slot) || !strings.HasPrefix(a, "20260102T030000.000Z-") {
		t.Fatalf("id %q", a)
	}
	if a == backup.ScheduledID("acme2", slot) || a == backup.ScheduledID("acme", slot.Add(time.Minute)) {
		t.Fatal("ids collide across tenants or slots")
	}
	if ts, _ := catalog.IDTime(a); !ts.Equal(slot) {
		t.Fatalf("id time %v", ts)
	}
}

// POST /backups answers 202 with a queued row, its job and a Location; the
// GET routes list newest first, page and validate their inputs.
func TestBackupsHTTP(t *testing.T) {
	e := newEnv(t)
	op, err := e.issuer.Token(testTenant, "backup.operator")
	must(t, err)
	reader, err := e.issuer.Token(testTenant, "byok.read")
	must(t, err)
	platform, err := e.issuer.Token("ops", "platform.operator")
	must(t, err)

	var ids []string
	for range 3 {
		rec := e.http(http.MethodPost, "/api/tenants/acme/backups", op, "")
		if rec.Code != http.StatusAccepted {
			t.Fatalf("POST = %d %s", rec.Code, rec.Body)
		}
		var body struct{ BackupID, Status string }
		must(t, json.Unmarshal(rec.Body.Bytes(), &body))
		if body.Status != "queued" || !catalog.ValidID(body.BackupID) ||
			rec.Header().Get("Location") != "/api/tenants/acme/backups/"+body.BackupID {
			t.Fatalf("POST body %s, Location %q", rec.Body, rec.Header().Get("Location"))
		}
		ids = append(ids, body.BackupID)
		// Finished, so the next POST queues a new backup (while one is
		// queued or running, POST answers with it).
		e.finish(body.BackupID, catalog.StatusCompleted)
		time.Sleep(2 * time.Millisecond) // distinct milliseconds: ids sort by time
	}
	jobs := e.received()
	if len(jobs) != 3 || jobs[0].BackupID != ids[0] || jobs[0].Reason != catalog.ReasonManual {
		t.Fatalf("jobs = %+v", jobs)
	}
	// Any tenant a platform operator may operate, scheduled or not.
	if rec := e.http(http.MethodPost, "/api/tenants/unscheduled/backups", platform, "{}"); rec.Code != http.StatusAccepted {
		t.Fatalf("platform POST = %d %s", rec.Code, rec.Body)
	}

	rec := e.http(http.MethodGet, "/api/tenants/acme/backups?maxResults=2", reader, "")
	var page struct {
		Backups []struct {
			BackupID, Status, Reason string
		}
		ContinuationToken *string
	}
	must(t, json.Unmarshal(rec.Body.Bytes(), &page))
	if rec.Code != 200 || len(page.Backups) != 2 || page.Backups[0].BackupID != ids[2] || page.Backups[1].BackupID != ids[1] ||
		page.Backups[0].Status != "completed" || page.Backups[0].Reason != "manual" || page.ContinuationToken == nil {
		t.Fatalf("page 1 = %d %s", rec.Code, rec.Body)
	}
	rec = e.http(http.MethodGet, "/api/tenants/acme/backups?maxResults=2&continuationToken="+*page.ContinuationToken, reader, "")
	must(t, json.Unmarshal(rec.Body.Bytes(), &page))
	if len(page.Backups) != 1 || page.Backups[0].BackupID != ids[0] || page.ContinuationToken != nil {
		t.Fatalf("page 2 = %s", rec.Body)
	}

	rec = e.http(http.MethodGet, "/api/tenants/acme/backups/"+ids[1], reader, "")
	var one map[string]any
	must(t, json.Unmarshal(rec.Body.Bytes(), &one))
	if rec.Code != 200 || one["backupId"] != ids[1] || one["tenant"] != "acme" || one["error"] != nil {
		t.Fatalf("GET one = %d %s", rec.Code, rec.Body)
	}

	refusals := []struct {
		method, path, token, body string
		status                    int
		code                      errcode.Code
	}{
		{"GET", "/api/tenants/acme/backups?maxResults=0", reader, "", 400, errcode.InvalidRequest},
		{"GET", "/api/tenants/acme/backups?maxResults=1001", reader, "", 400, errcode.InvalidRequest},
		{"GET", "/api/tenants/acme/backups?maxResults=ten", reader, "", 400, errcode.InvalidRequest},
		{"GET", "/api/tenants/acme/backups?continuationToken=forged", reader, "", 400, errcode.InvalidRequest},
		{"GET", "/api/tenants/acme/backups/not~an.id%2F", reader, "", 400, errcode.InvalidRequest},
		{"GET", "/api/tenants/acme/backups/" + catalog.NewID(time.Now()), reader, "", 404, errcode.BackupNotFound},
		{"GET", "/api/tenants/other/backups", reader, "", 403, errcode.Forbidden},
		{"GET", "/api/tenants/acme/backups", "", "", 401, errcode.Unauthorized},
		{"POST", "/api/tenants/acme/backups", reader, "", 403, errcode.Forbidden},
		{"POST", "/api/tenants/acme/backups", op, `{"full":true}`, 400, errcode.InvalidRequest},
	}
	for _, r := range refusals {
		rec := e.http(r.method, r.path, r.token, r.body)
		var body errcode.Body
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != r.status || body.Error.Code != r.code || body.Error.Message == "" {
			t.Errorf("%s %s = %d %s, want %d %s", r.method, r.path, rec.Code, rec.Body, r.status, r.code)
		}
	}
	// A queue outage: 503, and the row is failed rather than queued forever.
	e.queue.fail.Store(true)
	if rec := e.http(http.MethodPost, "/api/tenants/acme/backups", op, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST with the queue down = %d %s", rec.Code, rec.Body)
	}
	p, err := e.cat.ListBackups(t.Context(), "acme", catalog.ListOptions{MaxResults: 1})
	must(t, err)
	if b := p.Backups[0]; b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.ServiceUnavailable {
		t.Errorf("unqueued row = %+v", b)
	}
}

func (e *env) http(method, path, token, body string) *httptest.ResponseRecorder {
	return e.httpCtx(e.t.Context(), method, path, token, body)
}

func (e *env) httpCtx(ctx context.Context, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	must(t, err)
	return b
}

var (
	_ = context.Background
	_ *aztables.Client
)

// TestPostClientGoneBetweenRowAndMessage: a caller that disconnects after
// the backup row is written still gets its message queued (found by the
// kill soak): otherwise the row stayed queued with nothing to run it, and
// every later POST would answer with that stuck backup.
func TestPostClientGoneBetweenRowAndMessage(t *testing.T) {
	e := newEnv(t)
	op, err := e.issuer.Token(testTenant, "backup.operator")
	must(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	e.queue.beforeEnqueue = cancel
	rec := e.httpCtx(ctx, http.MethodPost, "/api/tenants/"+testTenant+"/backups", op, "")
	e.queue.beforeEnqueue = nil
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST with the client gone = %d %s", rec.Code, rec.Body)
	}
	if n := len(e.received()); n != 1 {
		t.Fatalf("%d messages queued, want 1", n)
	}
}
