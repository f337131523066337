package restore_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// deliverJob hands job to the RestoreWorker route as the host does.
func (e *env) deliverJob(job jobqueue.RestoreJob, dequeueCount int) int {
	e.t.Helper()
	req := httptest.NewRequestWithContext(e.t.Context(), "POST", "/RestoreWorker", bytes.NewReader(hostPayload(e.t, job, dequeueCount)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec.Code
}

// TestForgottenQueuedRestoreResent (kill soak finding): Start writes the
// queued row, then the message; a process killed in between left the
// restore queued forever. The sweep resends the job of every queued
// restore older than the grace, and delivering it runs the restore; a
// fresh queued row is left alone; a restore whose message exists gets one
// duplicate, and delivering both runs it once.
func TestForgottenQueuedRestoreResent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.seed("acme", 10, 2)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Platform)
	e.disturb("acme")

	// The row Start writes, without its message.
	forgotten := catalog.NewRestore("acme", b.BackupID, "acme", catalog.ModeReplace, false, e.clock.now())
	must(t, e.cat.CreateRestore(ctx, forgotten))
	withMsg := e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
	e.clock.advance(time.Hour + time.Minute) // past SweepGrace
	fresh := catalog.NewRestore("acme", b.BackupID, "acme", catalog.ModeMerge, false, e.clock.now())
	must(t, e.cat.CreateRestore(ctx, fresh))

	sent := len(e.queue.jobs)
	must(t, e.svc.RunSweep(ctx))
	resent := slices.Clone(e.queue.jobs[sent:])
	var ids []string
	for _, j := range resent {
		ids = append(ids, j.RestoreID)
	}
	slices.Sort(ids)
	if wantIDs := []string{forgotten.RestoreID, withMsg}; !slices.Equal(ids, slices.Sorted(slices.Values(wantIDs))) {
		t.Fatalf("resent %v, want %v", ids, wantIDs)
	}
	if l := e.logs.Records("restore sweep run"); len(l) != 1 || l[0]["forgotten"] != 2.0 || l[0]["resent"] != 2.0 {
		t.Errorf("sweep log = %v", l)
	}

	// Every message is delivered: the original of withMsg and both resends.
	for _, j := range append(e.queue.jobs[sent-1:sent], resent...) {
		if code := e.deliverJob(j, 1); code != http.StatusOK {
			t.Fatalf("RestoreWorker(%s) = %d; log:\n%s", j.RestoreID, code, e.logs)
		}
	}
	wantSucceeded(t, e.status("acme", forgotten.RestoreID), progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("restored tenant differs: %s", d)
	}
	for _, id := range []string{forgotten.RestoreID, withMsg} {
		r, err := e.cat.GetRestore(ctx, "acme", id)
		must(t, err)
		if r.State != catalog.RestoreSucceeded || r.Attempts != 1 {
			t.Fatalf("restore %s = %s after %d attempts; want succeeded once", id, r.State, r.Attempts)
		}
	}
	if r, err := e.cat.GetRestore(ctx, "acme", fresh.RestoreID); err != nil || r.State != catalog.RestoreQueued || !r.ResentAt.IsZero() {
		t.Fatalf("fresh restore = %+v, %v; want queued, not resent", r, err)
	}
	// Within the grace of the resend nothing is sent again.
	sent = len(e.queue.jobs)
	must(t, e.svc.RunSweep(ctx))
	if n := len(e.queue.jobs) - sent; n != 0 {
		t.Fatalf("second sweep resent %d jobs", n)
	}
}
