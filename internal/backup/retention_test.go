package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/retention"
)

// completed writes a completed backup of tenant finished at at, with a
// committed manifest and two chunks under attempt a1, and returns the row
// and its blob names.
func (e *env) completed(tenant string, at time.Time) (*catalog.Backup, []string) {
	e.t.Helper()
	b := e.mkRow(tenant, catalog.StatusCompleted, at, func(id string) string { return tenant + "/" + id + "/a1/manifest" })
	var names []string
	for _, rest := range []string{"a1/chunks/files/0000000000", "a1/chunks/records/0000000000", "a1/manifest"} {
		names = append(names, e.put(tenant, b.BackupID, rest))
	}
	return b, names
}

func (e *env) token(roles ...string) string {
	e.t.Helper()
	tok, err := e.issuer.Token(testTenant, roles...)
	must(e.t, err)
	return tok
}

// fire invokes a timer function as the host does.
func (e *env) fire(name string) *httptest.ResponseRecorder {
	body := fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":%q,"UtcNow":%q,"RandGuid":"4e773554-f6b7-4ea2-b07d-4c5fd5aba741"}}}`,
		name, e.clock.Now().UTC().Format(time.RFC3339Nano))
	req := httptest.NewRequestWithContext(e.t.Context(), http.MethodPost, "/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

func (e *env) listIDs(query string) map[string]string {
	e.t.Helper()
	rec := e.http(http.MethodGet, "/api/tenants/"+testTenant+"/backups?maxResults=1000"+query, e.token("byok.read"), "")
	if rec.Code != 200 {
		e.t.Fatalf("list = %d %s", rec.Code, rec.Body)
	}
	var page struct {
		Backups []struct{ BackupID, Status string }
	}
	must(e.t, json.Unmarshal(rec.Body.Bytes(), &page))
	out := map[string]string{}
	for _, b := range page.Backups {
		out[b.BackupID] = b.Status
	}
	return out
}

func fraction(f float64) func(*backup.Options) {
	return func(o *backup.Options) { o.MaxDeleteFraction = f }
}

// TestRetentionRun: the run soft-deletes exactly what no rule keeps
// (deletedBy retention, purgeAfter = deletedAt + 14 days), leaves the
// newest, queued and running backups alone, hides deleted backups from the
// list unless include=deleted, changes nothing when run again, and once
// purgeAfter has passed deletes their blobs and marks them purged, never
// touching the kept backups' blobs or a prefix without a row.
func TestRetentionRun(t *testing.T) {
	e := newEnv(t, fraction(1))
	ctx := t.Context()
	if rec := e.http(http.MethodPut, "/api/tenants/"+testTenant+"/retention", e.token("backup.operator"), `{"keepLast": 2}`); rec.Code != 200 {
		t.Fatalf("PUT retention = %d %s", rec.Code, rec.Body)
	}
	now := e.clock.Now()
	var rows []*catalog.Backup
	var blobs [][]string
	for d := 6; d >= 1; d-- {
		b, names := e.completed(testTenant, now.Add(-time.Duration(d)*24*time.Hour))
		rows, blobs = append(rows, b), append(blobs, names)
	}
	queued := e.mkRow(testTenant, catalog.StatusQueued, now.Add(-10*24*time.Hour), nil)
	running := e.mkRow(testTenant, catalog.StatusRunning, now.Add(-9*24*time.Hour), nil)
	runningChunk := e.put(testTenant, running.BackupID, "a1/chunks/records/0000000000")
	orphan := e.put(testTenant, catalog.NewID(now.Add(-30*24*time.Hour)), "a1/manifest")

	rep, err := e.svc.Retention(ctx)
	if err != nil || rep.SoftDeleted != 4 || rep.Purged != 0 || rep.BreakerTenants != 0 {
		t.Fatalf("first run = %+v, %v", rep, err)
	}
	for i, b := range rows {
		got := e.row(testTenant, b.BackupID)
		switch {
		case i < 4 && (got.Status != catalog.StatusDeleted || got.DeletedBy != catalog.DeletedByRetention ||
			!got.PurgeAfter.Equal(got.DeletedAt.AddDate(0, 0, 14)) || got.DeletedAt.IsZero()):
			t.Errorf("backup %d = %s by %q, deleted %s, purge after %s", i, got.Status, got.DeletedBy, got.DeletedAt, got.PurgeAfter)
		case i >= 4 && got.Status != catalog.StatusCompleted:
			t.Errorf("kept backup %d = %s", i, got.Status)
		}
	}
	if q, r := e.row(testTenant, queued.BackupID), e.row(testTenant, running.BackupID); q.Status != catalog.StatusQueued || q.ETag != queued.ETag ||
		r.Status != catalog.StatusRunning || r.ETag != running.ETag {
		t.Errorf("queued/running touched: %s %s", q.Status, r.Status)
	}
	e.checkBlobs(nil, append(append(blobs[0], blobs[3]...), orphan, runningChunk))

	listed, all := e.listIDs(""), e.listIDs("&include=deleted")
	if len(listed) != 4 || len(all) != 8 || all[rows[0].BackupID] != "deleted" {
		t.Errorf("list = %v, with deleted = %v", listed, all)
	}
	if _, ok := listed[rows[0].BackupID]; ok {
		t.Error("a deleted backup is listed without include=deleted")
	}
	if rec := e.http(http.MethodGet, "/api/tenants/"+testTenant+"/backups?include=all", e.token("byok.read"), ""); rec.Code != 400 {
		t.Errorf("include=all = %d", rec.Code)
	}

	// Redelivered or repeated: nothing more to do.
	if rep, err := e.svc.Retention(ctx); err != nil || rep.SoftDeleted != 0 || rep.Purged != 0 {
		t.Fatalf("second run = %+v, %v", rep, err)
	}

	// Not yet past purgeAfter: nothing purged.
	e.clock.Advance(13 * 24 * time.Hour)
	if rep, err := e.svc.Retention(ctx); err != nil || rep.Purged != 0 {
		t.Fatalf("run before purgeAfter = %+v, %v", rep, err)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	// Through the timer function, as the host fires it.
	if rec := e.fire("BackupRetention"); rec.Code != 200 {
		t.Fatalf("BackupRetention = %d %s", rec.Code, rec.Body)
	}
	for i, b := range rows[:4] {
		if got := e.row(testTenant, b.BackupID); got.Status != catalog.StatusPurged || got.PurgedAt.IsZero() {
			t.Errorf("backup %d = %s after its purge time", i, got.Status)
		}
	}
	var gone []string
	for _, names := range blobs[:4] {
		gone = append(gone, names...)
	}
	e.checkBlobs(gone, append(append(blobs[4], blobs[5]...), orphan))
	if !strings.Contains(e.logs.String(), "retention run") {
		t.Error("no retention run log line")
	}
}

// TestRetentionBreaker: a run that would soft-delete more than
// RETENTION_MAX_DELETE_FRACTION of a tenant's completed backups does
// nothing for that tenant and logs why; at the fraction it proceeds.
func TestRetentionBreaker(t *testing.T) {
	e := newEnv(t) // default fraction 0.5
	ctx := t.Context()
	must(t, e.policies.PutPolicy(ctx, testTenant, retention.Policy{KeepLast: 1}))
	now := e.clock.Now()
	var rows []*catalog.Backup
	for d := 4; d >= 1; d-- {
		b, _ := e.completed(testTenant, now.Add(-time.Duration(d)*time.Hour))
		rows = append(rows, b)
	}
	rep, err := e.svc.Retention(ctx)
	if err != nil || rep.SoftDeleted != 0 || rep.BreakerTenants != 1 {
		t.Fatalf("run = %+v, %v", rep, err)
	}
	for _, b := range rows {
		if got := e.row(testTenant, b.BackupID); got.Status != catalog.StatusCompleted {
			t.Errorf("breaker tripped but %s is %s", b.BackupID, got.Status)
		}
	}
	if !strings.Contains(e.logs.String(), "RETENTION_MAX_DELETE_FRACTION") {
		t.Error("the breaker did not log why")
	}
	// keepLast=2 deletes 2 of 4: exactly the fraction, allowed.
	must(t, e.policies.PutPolicy(ctx, testTenant, retention.Policy{KeepLast: 2}))
	if rep, err := e.svc.Retention(ctx); err != nil || rep.SoftDeleted != 2 || rep.BreakerTenants != 0 {
		t.Fatalf("run at the fraction = %+v, %v", rep, err)
	}
}

// TestDeleteAndUndelete: DELETE soft-deletes a completed backup as the
// caller (200 with the backup), refuses the newest completed backup and
// a backup that is not completed (409); undelete brings it back before
// purgeAfter and answers 409 after it.
func TestDeleteAndUndelete(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	old, oldBlobs := e.completed(testTenant, now.Add(-3*time.Hour))
	mid, _ := e.completed(testTenant, now.Add(-2*time.Hour))
	newest, _ := e.completed(testTenant, now.Add(-time.Hour))
	running := e.mkRow(testTenant, catalog.StatusRunning, now, nil)
	op, reader := e.token("backup.operator"), e.token("byok.read")
	path := func(id string) string { return "/api/tenants/" + testTenant + "/backups/" + id }

	for name, c := range map[string]struct {
		method, path, token string
		status              int
		code                string
	}{
		"newest completed": {http.MethodDelete, path(newest.BackupID), op, 409, "Conflict"},
		"running":          {http.MethodDelete, path(running.BackupID), op, 409, "Conflict"},
		"unknown":          {http.MethodDelete, path(catalog.NewID(now)), op, 404, "BackupNotFound"},
		"reader":           {http.MethodDelete, path(old.BackupID), reader, 403, "Forbidden"},
		"bad id":           {http.MethodDelete, path("..x"), op, 400, "InvalidRequest"},
		"undelete live":    {http.MethodPost, path(running.BackupID) + "/undelete", op, 409, "Conflict"},
		"undelete reader":  {http.MethodPost, path(old.BackupID) + "/undelete", reader, 403, "Forbidden"},
	} {
		rec := e.http(c.method, c.path, c.token, "")
		var body struct{ Error struct{ Code string } }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != c.status || body.Error.Code != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, rec.Code, rec.Body, c.status, c.code)
		}
	}
	if got := e.row(testTenant, newest.BackupID); got.Status != catalog.StatusCompleted {
		t.Fatalf("newest = %s", got.Status)
	}

	rec := e.http(http.MethodDelete, path(mid.BackupID), op, "")
	var got struct {
		Status, DeletedBy     string
		DeletedAt, PurgeAfter time.Time
	}
	must(t, json.Unmarshal(rec.Body.Bytes(), &got))
	if rec.Code != 200 || got.Status != "deleted" || got.DeletedBy != "dev-user@"+testTenant ||
		!got.PurgeAfter.Equal(got.DeletedAt.AddDate(0, 0, 14)) {
		t.Fatalf("DELETE = %d %s", rec.Code, rec.Body)
	}
	if rec := e.http(http.MethodDelete, path(mid.BackupID), op, ""); rec.Code != 409 {
		t.Errorf("second DELETE = %d", rec.Code)
	}
	if rec := e.http(http.MethodPost, path(mid.BackupID)+"/undelete", op, ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"status":"completed"`) ||
		strings.Contains(rec.Body.String(), "deletedAt") {
		t.Fatalf("undelete = %d %s", rec.Code, rec.Body)
	}

	// Past purgeAfter, undelete is refused; the blobs are still there
	// until the retention run purges them.
	if rec := e.http(http.MethodDelete, path(old.BackupID), op, ""); rec.Code != 200 {
		t.Fatalf("DELETE old = %d", rec.Code)
	}
	e.clock.Advance(14*24*time.Hour + time.Minute)
	if rec := e.http(http.MethodPost, path(old.BackupID)+"/undelete", op, ""); rec.Code != 409 {
		t.Errorf("undelete after purgeAfter = %d %s", rec.Code, rec.Body)
	}
	e.checkBlobs(nil, oldBlobs)
}

// TestRetentionPolicyAPI: GET says the default applies until a PUT stores
// the tenant's own; PUT replaces the whole policy, ignores source, and
// refuses negative numbers, non-integers and unknown fields.
func TestRetentionPolicyAPI(t *testing.T) {
	e := newEnv(t)
	const p = "/api/tenants/" + testTenant + "/retention"
	op, reader := e.token("backup.operator"), e.token("byok.read")
	get := func() string {
		rec := e.http(http.MethodGet, p, reader, "")
		if rec.Code != 200 {
			t.Fatalf("GET = %d %s", rec.Code, rec.Body)
		}
		return strings.TrimSpace(rec.Body.String())
	}
	if got, want := get(), `{"keepLast":7,"keepDaily":30,"keepWeekly":12,"keepMonthly":12,"keepYearly":0,"source":"default"}`; got != want {
		t.Errorf("GET = %s, want %s", got, want)
	}
	for _, body := range []string{`{"keepLast": -1}`, `{"keepDaily": 1.5}`, `{"keepHourly": 24}`, `{"keepLast": "7"}`, `{"keepLast": 1e12}`, ``} {
		rec := e.http(http.MethodPut, p, op, body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "InvalidRequest") {
			t.Errorf("PUT %s = %d %s", body, rec.Code, rec.Body)
		}
	}
	if rec := e.http(http.MethodPut, p, reader, `{"keepLast": 1}`); rec.Code != 403 {
		t.Errorf("PUT as reader = %d", rec.Code)
	}
	if rec := e.http(http.MethodPut, p, e.token("byok.admin"), `{"keepLast": 1}`); rec.Code != 403 {
		t.Errorf("PUT as byok.admin = %d", rec.Code)
	}
	rec := e.http(http.MethodPut, p, op, `{"keepDaily": 3, "keepYearly": 2, "source": "default"}`)
	want := `{"keepLast":0,"keepDaily":3,"keepWeekly":0,"keepMonthly":0,"keepYearly":2,"source":"tenant"}`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want || get() != want {
		t.Errorf("PUT = %d %s, GET %s; want %s", rec.Code, rec.Body, get(), want)
	}
	e.http(http.MethodPut, p, op, `{"keepWeekly": 1}`)
	if got := get(); got != `{"keepLast":0,"keepDaily":0,"keepWeekly":1,"keepMonthly":0,"keepYearly":0,"source":"tenant"}` {
		t.Errorf("after a second PUT = %s (PUT replaces the whole policy)", got)
	}
}

// faultyBlobs deletes at most budget blobs, then fails as if the process
// had been killed mid-purge.
type faultyBlobs struct {
	blobstore.Store
	budget int
}

func (f *faultyBlobs) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	var names []string
	if err := f.Store.List(ctx, prefix, func(i blobstore.Info) error { names = append(names, i.Name); return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if f.budget == 0 {
			return n, errors.New("injected: killed while deleting blobs")
		}
		if _, err := f.Store.DeletePrefix(ctx, name); err != nil {
			return n, err
		}
		f.budget--
		n++
	}
	return n, nil
}

// faultyCatalog fails the row writes fail picks.
type faultyCatalog struct {
	catalog.Store
	fail func(*catalog.Backup) bool
}

func (f faultyCatalog) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	if f.fail(b) {
		return errors.New("injected: killed before the row write")
	}
	return f.Store.UpdateBackup(ctx, b)
}

// TestPurgeCrashSafety kills the purge between each pair of its steps
// (before the row records the purge's start, after some blobs are gone,
// after all blobs are gone but before the row says purged): the row is
// never completed without its blobs, a purge that started can't be
// undeleted, and the next run finishes the purge.
func TestPurgeCrashSafety(t *testing.T) {
	never := func(*catalog.Backup) bool { return false }
	for _, c := range []struct {
		name      string
		budget    int // blobs the killed run deletes; -1 = all
		fail      func(*catalog.Backup) bool
		wantBlobs int // left after the killed run
		started   bool
	}{
		{"before the purge is recorded", -1, func(b *catalog.Backup) bool { return !b.PurgeStartedAt.IsZero() && b.Status == catalog.StatusDeleted }, 3, false},
		{"after one blob", 1, never, 2, true},
		{"after every blob, before the row says purged", -1, func(b *catalog.Backup) bool { return b.Status == catalog.StatusPurged }, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			now := e.clock.Now()
			old, names := e.completed(testTenant, now.Add(-2*time.Hour))
			e.completed(testTenant, now.Add(-time.Hour))
			if _, err := e.svc.Delete(ctx, testTenant, old.BackupID, "ops"); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(15 * 24 * time.Hour)
			budget := c.budget
			if budget < 0 {
				budget = 1 << 30
			}
			killed, _ := e.build(e.svcLogger(), func(o *backup.Options) {
				o.Blobs = &faultyBlobs{Store: e.blobs, budget: budget}
				o.Catalog = faultyCatalog{Store: e.cat, fail: c.fail}
			})
			if _, err := killed.Retention(ctx); err == nil {
				t.Fatal("the killed run reported no error")
			}
			row := e.row(testTenant, old.BackupID)
			left := len(e.blobNames(testTenant + "/" + old.BackupID + "/"))
			if row.Status != catalog.StatusDeleted || left != c.wantBlobs || row.PurgeStartedAt.IsZero() == c.started {
				t.Fatalf("after the kill: %s, purge started %v, %d blobs left", row.Status, !row.PurgeStartedAt.IsZero(), left)
			}
			if _, err := e.svc.Undelete(ctx, testTenant, old.BackupID, "ops"); err == nil {
				t.Fatal("undelete of a backup past purgeAfter succeeded")
			}
			// The next run (or the redelivered timer) finishes it.
			rep, err := e.svc.Retention(ctx)
			if err != nil || rep.Purged != 1 {
				t.Fatalf("next run = %+v, %v", rep, err)
			}
			if got := e.row(testTenant, old.BackupID); got.Status != catalog.StatusPurged {
				t.Fatalf("after the next run: %s", got.Status)
			}
			e.checkBlobs(names, nil)
		})
	}
}

// TestSoftDeleteWindow: the local stack's DEV_SOFT_DELETE_WINDOW replaces
// the days, so its demo can undelete before purgeAfter and purge after it
// within seconds.
func TestSoftDeleteWindow(t *testing.T) {
	e := newEnv(t, func(o *backup.Options) { o.SoftDeleteWindow = 10 * time.Second })
	now := e.clock.Now()
	old, oldBlobs := e.completed(testTenant, now.Add(-2*time.Hour))
	e.completed(testTenant, now.Add(-time.Hour))
	op := e.token("backup.operator")
	path := "/api/tenants/" + testTenant + "/backups/" + old.BackupID
	rec := e.http(http.MethodDelete, path, op, "")
	var got struct{ DeletedAt, PurgeAfter time.Time }
	must(t, json.Unmarshal(rec.Body.Bytes(), &got))
	if rec.Code != 200 || !got.PurgeAfter.Equal(got.DeletedAt.Add(10*time.Second)) {
		t.Fatalf("DELETE = %d %s, want purgeAfter 10s after deletedAt", rec.Code, rec.Body)
	}
	e.clock.Advance(11 * time.Second)
	if rec := e.http(http.MethodPost, path+"/undelete", op, ""); rec.Code != 409 {
		t.Errorf("undelete after the window = %d %s", rec.Code, rec.Body)
	}
	e.checkBlobs(nil, oldBlobs)
}
