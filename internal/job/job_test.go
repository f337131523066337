package job_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/lease"
	leasetable "github.com/twinit/byok-backup/internal/lease/aztable"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

const maxDequeue = 3

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's catalog (in memory), real leases on Azurite, a clock
// and a queued backup row of its own tenant.
type env struct {
	t      *testing.T
	cat    *mem.Store
	leases *lease.Manager
	clock  *clock
	logs   *logtest.Buffer
	row    *catalog.Backup
	// work is the attempt's body (default: succeed); calls counts attempts.
	work  func(ctx context.Context, a *job.Attempt[*catalog.Backup]) error
	calls int
	// settled counts Settle calls; abandoned Abandon calls.
	settled, abandoned int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cat: mem.New(), clock: &clock{t: t0}}
	e.leases = lease.NewWith(leasetable.New(svc.NewClient("JobLeases")), &lease.Options{Now: e.clock.now})
	if err := e.leases.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	tenant := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	e.row = catalog.NewBackup(tenant, catalog.ReasonManual, t0)
	if err := e.cat.CreateBackup(t.Context(), e.row); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) run(ctx context.Context, dequeueCount int) error {
	log, buf := logtest.New()
	e.logs = buf
	o := job.Options{Leases: e.leases, LeaseTTL: time.Minute, HeartbeatEvery: time.Hour, StaleAfter: 2 * time.Minute,
		MaxDequeueCount: maxDequeue, Now: e.clock.now}
	spec := job.Spec[*catalog.Backup]{
		Kind: "backup",
		Load: func(ctx context.Context) (*catalog.Backup, error) {
			return e.cat.GetBackup(ctx, e.row.Tenant, e.row.BackupID)
		},
		Write: e.cat.UpdateBackup,
		Lease: func(b *catalog.Backup) (string, string) { return b.Tenant, b.BackupID },
		Settle: func(b *catalog.Backup, now time.Time) error {
			e.settled++
			b.Records = 7
			return nil
		},
		Work: func(ctx context.Context, a *job.Attempt[*catalog.Backup]) (func(*catalog.Backup) error, error) {
			e.calls++
			if e.work != nil {
				if err := e.work(ctx, a); err != nil {
					return nil, err
				}
			}
			return func(b *catalog.Backup) error { return b.Complete(e.clock.now()) }, nil
		},
		Abandon: func(ctx context.Context, a *job.Attempt[*catalog.Backup]) { e.abandoned++ },
	}
	return job.Run(ctx, o, spec, dequeueCount, log)
}

func (e *env) get() *catalog.Backup {
	e.t.Helper()
	b, err := e.cat.GetBackup(e.t.Context(), e.row.Tenant, e.row.BackupID)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func TestIsPermanent(t *testing.T) {
	plain := errors.New("storage said no")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"plain", plain, false},
		{"marked", job.Permanent(plain), true},
		{"marked, then wrapped", fmt.Errorf("context: %w", job.Permanent(plain)), true},
		{"permanent code", errcode.New(errcode.IntegrityCheckFailed, "tampered"), true},
		{"invalid request", errcode.Wrap(plain, errcode.InvalidRequest, "bad"), true},
		{"retried code", errcode.Wrap(plain, errcode.ServiceUnavailable, "down"), false},
		{"context-dependent code, unmarked", errcode.New(errcode.CustomerKeyUnavailable, "vault unreachable"), false},
		{"context-dependent code, marked", job.Permanent(errcode.New(errcode.Conflict, "spool full")), true},
		{"deadline", context.DeadlineExceeded, false},
	} {
		if got := job.IsPermanent(c.err); got != c.want {
			t.Errorf("%s: IsPermanent = %v, want %v", c.name, got, c.want)
		}
	}
	if job.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	marked := job.Permanent(errcode.New(errcode.CustomerKeyUnavailable, "revoked"))
	if errcode.CodeOf(marked) != errcode.CustomerKeyUnavailable || !errors.Is(fmt.Errorf("x: %w", marked), marked) {
		t.Errorf("Permanent hides the chain: code %s", errcode.CodeOf(marked))
	}
}

func TestSuccessCommitsAndReleasesTheLease(t *testing.T) {
	e := newEnv(t)
	if err := e.run(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	b := e.get()
	if b.Status != catalog.StatusCompleted || b.Attempts != 1 || b.Attempt == "" || e.settled != 1 || b.Records != 7 {
		t.Fatalf("row = %s attempts %d attempt %q records %d, settled %d", b.Status, b.Attempts, b.Attempt, b.Records, e.settled)
	}
	l, err := e.leases.Acquire(t.Context(), b.Tenant, "next", time.Minute)
	if err != nil {
		t.Fatalf("the lease was not released: %v", err)
	}
	_ = e.leases.Release(t.Context(), l)
	// A redelivery of an ended job is acknowledged without running.
	if err := e.run(t.Context(), 2); err != nil || e.calls != 1 {
		t.Fatalf("redelivery of an ended job = %v, %d attempts", err, e.calls)
	}
}

func TestRetryUnlessPermanentThenFailOnTheLastDelivery(t *testing.T) {
	e := newEnv(t)
	e.work = func(context.Context, *job.Attempt[*catalog.Backup]) error {
		return errcode.Wrap(errors.New("503"), errcode.ServiceUnavailable, "Storage is down.")
	}
	for d := 1; d < maxDequeue; d++ {
		if err := e.run(t.Context(), d); errcode.CodeOf(err) != errcode.ServiceUnavailable {
			t.Fatalf("delivery %d = %v, want the failure (retry)", d, err)
		}
		// Released for the redelivery: running, heartbeat cleared.
		if b := e.get(); b.Status != catalog.StatusRunning || !b.HeartbeatAt.IsZero() {
			t.Fatalf("after delivery %d: %s heartbeat %v", d, b.Status, b.HeartbeatAt)
		}
	}
	if err := e.run(t.Context(), maxDequeue); err != nil {
		t.Fatalf("last delivery = %v, want acknowledged", err)
	}
	b := e.get()
	if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.ServiceUnavailable || b.Attempts != maxDequeue || e.abandoned != 1 {
		t.Fatalf("row = %s %+v attempts %d abandoned %d", b.Status, b.Error, b.Attempts, e.abandoned)
	}
}

func TestPermanentFailsAtOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		code errcode.Code
	}{
		{"marked", job.Permanent(errcode.New(errcode.Conflict, "Too big.")), errcode.Conflict},
		{"code", errcode.New(errcode.IntegrityCheckFailed, "Tampered."), errcode.IntegrityCheckFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.work = func(context.Context, *job.Attempt[*catalog.Backup]) error { return c.err }
			if err := e.run(t.Context(), 1); err != nil {
				t.Fatalf("first delivery = %v, want acknowledged", err)
			}
			if b := e.get(); b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != c.code || b.Records != 7 {
				t.Fatalf("row = %s %+v records %d", b.Status, b.Error, b.Records)
			}
			if n := len(e.logs.Records("backup failed")); n != 1 {
				t.Fatalf("%d failures logged:\n%s", n, e.logs)
			}
		})
	}
}

func TestFreshRunningRowIsBusyAndTheLastDeliveryIsAcknowledged(t *testing.T) {
	e := newEnv(t)
	b := e.get()
	if err := b.Start("other", t0, false); err != nil {
		t.Fatal(err)
	}
	if err := e.cat.UpdateBackup(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := e.run(t.Context(), 1); !errors.Is(err, job.ErrBusy) {
		t.Fatalf("delivery during a fresh heartbeat = %v, want ErrBusy", err)
	}
	if err := e.run(t.Context(), maxDequeue); err != nil {
		t.Fatalf("last delivery during a fresh heartbeat = %v, want acknowledged", err)
	}
	if e.calls != 0 || e.get().Attempt != "other" {
		t.Fatalf("a busy delivery ran: %d attempts, row attempt %q", e.calls, e.get().Attempt)
	}
	// Stale: taken over.
	e.clock.advance(3 * time.Minute)
	if err := e.run(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if b := e.get(); b.Status != catalog.StatusCompleted || b.Attempts != 2 || b.Attempt == "other" {
		t.Fatalf("after the takeover: %s attempts %d attempt %q", b.Status, b.Attempts, b.Attempt)
	}
}

func TestHeldLeaseIsBusyThenConflictOnTheLastDelivery(t *testing.T) {
	e := newEnv(t)
	l, err := e.leases.Acquire(t.Context(), e.row.Tenant, "restore:r1", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.leases.Release(context.WithoutCancel(t.Context()), l)
	if err := e.run(t.Context(), 1); !errors.Is(err, job.ErrBusy) {
		t.Fatalf("delivery while the lease is held = %v, want ErrBusy", err)
	}
	if b := e.get(); b.Status != catalog.StatusQueued {
		t.Fatalf("a busy tenant flipped the row to %s", b.Status)
	}
	if err := e.run(t.Context(), maxDequeue); err != nil {
		t.Fatalf("last delivery = %v, want acknowledged", err)
	}
	b := e.get()
	if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.Conflict || !strings.Contains(b.Error.Message, "restore:r1") {
		t.Fatalf("row = %s %+v", b.Status, b.Error)
	}
	// Never started: nothing to settle or delete.
	if e.calls != 0 || e.settled != 0 || e.abandoned != 0 {
		t.Fatalf("calls %d settled %d abandoned %d", e.calls, e.settled, e.abandoned)
	}
}

func TestInterruptedAttemptReleasesTheRow(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.work = func(wctx context.Context, a *job.Attempt[*catalog.Backup]) error {
		cancel() // the host ends the invocation mid-work
		<-wctx.Done()
		// What a cancelled read looks like to the work: not the cause.
		return errcode.New(errcode.IntegrityCheckFailed, "stream truncated")
	}
	if err := e.run(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted attempt = %v, want context.Canceled", err)
	}
	if b := e.get(); b.Status != catalog.StatusRunning || !b.HeartbeatAt.IsZero() {
		t.Fatalf("after the interruption: %s heartbeat %v, want running and released", b.Status, b.HeartbeatAt)
	}
	e.work = nil
	if err := e.run(t.Context(), 2); err != nil {
		t.Fatalf("redelivery after the interruption = %v", err)
	}
	if b := e.get(); b.Status != catalog.StatusCompleted {
		t.Fatalf("after the redelivery: %s", b.Status)
	}
}

func TestNoRowIsAcknowledged(t *testing.T) {
	e := newEnv(t)
	e.row = catalog.NewBackup(e.row.Tenant, catalog.ReasonManual, t0.Add(time.Second))
	if err := e.run(t.Context(), 1); err != nil || e.calls != 0 {
		t.Fatalf("job without a row = %v, %d attempts", err, e.calls)
	}
}
