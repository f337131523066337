package backup_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/api"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
)

// fireMonitor posts a ByokMonitor timer invocation to a server that has
// only the backups part of that timer wired.
func (e *env) fireMonitor() {
	e.t.Helper()
	srv := server.New(server.Config{Logger: e.svcLogger()})
	srv.HandleTimer("ByokMonitor", api.ByokMonitor(nil, e.svc, nil))
	body := fmt.Sprintf(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"ByokMonitor","UtcNow":%q,"RandGuid":"4e773554-f6b7-4ea2-b07d-4c5fd5aba741"}}}`,
		time.Now().UTC().Format(time.RFC3339Nano))
	req := httptest.NewRequestWithContext(e.t.Context(), http.MethodPost, "/ByokMonitor", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("ByokMonitor = %d %s", rec.Code, rec.Body)
	}
}

// queuedRow writes a queued backup row and no message: what Request
// leaves when its process is killed between the row and the message.
func (e *env) queuedRow(tenant string, at time.Time) *catalog.Backup {
	e.t.Helper()
	b := catalog.NewBackup(tenant, catalog.ReasonManual, at)
	must(e.t, e.cat.CreateBackup(e.t.Context(), b))
	return b
}

// TestForgottenQueuedBackupResent (kill soak finding): a queued backup
// whose message was never written blocks the tenant's POST …/backups for
// good. The 15-minute ByokMonitor timer resends the job of every queued
// backup older than the sweep grace, and delivering it completes the
// backup; a fresh queued row and a backup waiting for its delayed retry
// are left alone; a row whose message exists gets one duplicate, and
// delivering both makes one backup.
func TestForgottenQueuedBackupResent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 20, 2)
	e.seed("acme2", 5, 1)
	forgotten := e.queuedRow(testTenant, e.clock.Now())
	withMsg := e.request("acme2")
	waiting := e.queuedRow("waiting", e.clock.Now())

	// The stuck row answers the tenant's POST: nothing new can start.
	op, err := e.issuer.Token(testTenant, "backup.operator")
	must(t, err)
	if rec := e.http(http.MethodPost, "/api/tenants/"+testTenant+"/backups", op, ""); rec.Code != http.StatusAccepted ||
		!strings.Contains(rec.Body.String(), forgotten.BackupID) {
		t.Fatalf("POST with a queued backup = %d %s; want that backup", rec.Code, rec.Body)
	}

	e.clock.Advance(time.Hour + time.Minute) // past SweepGrace
	fresh := e.queuedRow("fresh", e.clock.Now())
	must(t, waiting.Start("a1", e.clock.Now(), false))
	must(t, waiting.Requeue(e.clock.Now().Add(10*time.Minute), errcode.Detail{Code: errcode.Throttled, Message: "x"}))
	must(t, e.cat.UpdateBackup(ctx, waiting))

	e.fireMonitor()
	var got []string
	jobs := e.received() // acme2: the message Request enqueued, and the resend
	for _, j := range jobs {
		got = append(got, j.Tenant)
	}
	slices.Sort(got)
	if want := []string{testTenant, "acme2", "acme2"}; !slices.Equal(got, want) {
		t.Fatalf("messages after the sweep for %v, want %v", got, want)
	}
	if l := e.logs.Records("forgotten backup sweep run"); len(l) != 1 || l[0]["forgotten"] != 2.0 || l[0]["resent"] != 2.0 {
		t.Errorf("sweep log = %v", l)
	}
	for _, j := range jobs {
		if rec := e.deliver(ctx, e.handler, j, 1); rec.Code != http.StatusOK {
			t.Fatalf("worker(%s) = %d %s", j.Tenant, rec.Code, rec.Body)
		}
	}
	for _, b := range []*catalog.Backup{forgotten, {Tenant: "acme2", BackupID: withMsg.BackupID}} {
		row := e.row(b.Tenant, b.BackupID)
		if row.Status != catalog.StatusCompleted || row.Attempts != 1 {
			t.Fatalf("backup of %s after delivery = %s, %d attempts; want completed once", b.Tenant, row.Status, row.Attempts)
		}
		e.verifyBackup(row)
		page, err := e.cat.ListBackups(ctx, b.Tenant, catalog.ListOptions{})
		must(t, err)
		if len(page.Backups) != 1 {
			t.Fatalf("tenant %s has %d backups, want 1", b.Tenant, len(page.Backups))
		}
	}
	for _, b := range []*catalog.Backup{fresh, waiting} {
		if row := e.row(b.Tenant, b.BackupID); row.Status != catalog.StatusQueued || !row.ResentAt.IsZero() {
			t.Fatalf("%s row = %+v; want queued, not resent", b.Tenant, row)
		}
	}
	// The tenant's POST starts a new backup again.
	rec := e.http(http.MethodPost, "/api/tenants/"+testTenant+"/backups", op, "")
	if rec.Code != http.StatusAccepted || strings.Contains(rec.Body.String(), forgotten.BackupID) {
		t.Fatalf("POST after the sweep = %d %s; want a new backup", rec.Code, rec.Body)
	}
	e.received()

	// A backup waiting out a transient key failure counts from its RetryAt.
	e.clock.Advance(time.Hour + 5*time.Minute) // past RetryAt, not past RetryAt + grace
	e.fireMonitor()
	tenantsOf := func(jobs []jobqueue.BackupJob) []string {
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.Tenant)
		}
		slices.Sort(ids)
		return ids
	}
	// acme: the backup the second POST made has waited past the grace too.
	if got, want := tenantsOf(e.received()), []string{testTenant, "fresh"}; !slices.Equal(got, want) {
		t.Fatalf("messages = %v, want %v", got, want)
	}
	e.clock.Advance(10 * time.Minute)
	e.fireMonitor()
	// Only the waiting backup: the others were resent within the grace.
	if got, want := tenantsOf(e.received()), []string{"waiting"}; !slices.Equal(got, want) {
		t.Fatalf("messages = %v, want %v", got, want)
	}
}

// TestSchedulerResendsForgottenOnDemandBackup: the daily scheduler run
// resends too (judged at the slot's time), not only the 15-minute timer.
func TestSchedulerResendsForgottenOnDemandBackup(t *testing.T) {
	e := newEnv(t)
	at := time.Date(2026, 3, 4, 2, 0, 5, 0, time.UTC)
	must(t, e.dir.Put(t.Context(), tenants.Tenant{ID: "alpha", BackupEnabled: false}))
	stuck := e.queuedRow(testTenant, at.Add(-2*time.Hour))
	e.queuedRow("fresh", at.Add(-time.Minute))
	if rec := e.fireTimer(at); rec.Code != http.StatusOK {
		t.Fatalf("scheduler = %d %s", rec.Code, rec.Body)
	}
	jobs := e.received()
	if len(jobs) != 1 || jobs[0] != (jobqueue.BackupJob{Tenant: testTenant, BackupID: stuck.BackupID, Reason: catalog.ReasonManual, RequestedAt: stuck.RequestedAt}) {
		t.Fatalf("jobs = %+v; want the stuck backup's", jobs)
	}
	if l := e.logs.Records("backup scheduler run"); len(l) != 1 || l[0]["forgotten"] != 1.0 || l[0]["resent"] != 1.0 {
		t.Errorf("scheduler log = %v", l)
	}
}
