package backup_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/lease"
)

var errCrashed = errors.New("process killed (test)")

// crash is a process that can die: from the fault on, every storage and
// lease call it makes fails and its invocation context is cancelled, so
// nothing it would do afterwards (mark the row, release the lease, clean
// up) reaches storage, as after a real kill.
type crash struct {
	dead   atomic.Bool
	cancel context.CancelFunc
}

func (c *crash) kill() error {
	c.dead.Store(true)
	c.cancel()
	return errCrashed
}

func (c *crash) check() error {
	if c.dead.Load() {
		return errCrashed
	}
	return nil
}

// faultBlobs injects a crash (or transient failures) on chosen PutBlob calls.
type faultBlobs struct {
	blobstore.Store
	c         *crash
	crashOn   func(name string) bool
	transient atomic.Int32 // fail this many PutBlob calls with a transient error
	puts      atomic.Int32
}

func (f *faultBlobs) PutBlob(ctx context.Context, name string, data []byte) error {
	if err := f.c.check(); err != nil {
		return err
	}
	f.puts.Add(1)
	if f.crashOn != nil && f.crashOn(name) {
		return f.c.kill()
	}
	if f.transient.Add(-1) >= 0 {
		return fmt.Errorf("injected 503: %w", blobstore.ErrTransient)
	}
	return f.Store.PutBlob(ctx, name, data)
}

func (f *faultBlobs) GetBlob(ctx context.Context, name string) ([]byte, error) {
	if err := f.c.check(); err != nil {
		return nil, err
	}
	return f.Store.GetBlob(ctx, name)
}

func (f *faultBlobs) List(ctx context.Context, prefix string, fn func(blobstore.Info) error) error {
	if err := f.c.check(); err != nil {
		return err
	}
	return f.Store.List(ctx, prefix, fn)
}

func (f *faultBlobs) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if err := f.c.check(); err != nil {
		return 0, err
	}
	return f.Store.DeletePrefix(ctx, prefix)
}

// faultCatalog crashes before or after a chosen row update.
type faultCatalog struct {
	catalog.Store
	c           *crash
	crashBefore func(b *catalog.Backup) bool
	crashAfter  func(b *catalog.Backup) bool
}

func (f *faultCatalog) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	if err := f.c.check(); err != nil {
		return err
	}
	if f.crashBefore != nil && f.crashBefore(b) {
		return f.c.kill()
	}
	if err := f.Store.UpdateBackup(ctx, b); err != nil {
		return err
	}
	if f.crashAfter != nil && f.crashAfter(b) {
		return f.c.kill()
	}
	return nil
}

func (f *faultCatalog) GetBackup(ctx context.Context, tenant, id string) (*catalog.Backup, error) {
	if err := f.c.check(); err != nil {
		return nil, err
	}
	return f.Store.GetBackup(ctx, tenant, id)
}

// faultLeases dies with the process: a killed worker releases nothing.
type faultLeases struct {
	backup.Leases
	c *crash
}

func (f *faultLeases) Release(ctx context.Context, l *lease.Lease) error {
	if err := f.c.check(); err != nil {
		return err
	}
	return f.Leases.Release(ctx, l)
}

// The pipeline is killed at each step; the redelivered message (a fresh
// process, the stale attempt's heartbeat aged) finishes the backup, which
// verifies, and nothing of the killed attempt is left. A kill after the
// commit leaves a completed backup that verifies, and the redelivery does
// nothing.
func TestCrashThenRetry(t *testing.T) {
	isChunk := func(n int) func(string) bool {
		var seen atomic.Int32
		return func(name string) bool { return strings.Contains(name, "/chunks/") && seen.Add(1) == int32(n) }
	}
	completing := func(b *catalog.Backup) bool { return b.Status == catalog.StatusCompleted }
	cases := []struct {
		name      string
		blobs     func(string) bool
		before    func(*catalog.Backup) bool
		after     func(*catalog.Backup) bool
		committed bool // the kill came after the commit point
	}{
		{name: "at-first-chunk", blobs: isChunk(1)},
		{name: "after-some-chunks", blobs: isChunk(4)},
		{name: "before-manifest", blobs: func(n string) bool { return strings.HasSuffix(n, "/manifest") }},
		{name: "before-commit", before: completing},
		{name: "after-commit", after: completing, committed: true},
		{name: "at-first-heartbeat", before: func(b *catalog.Backup) bool {
			return b.Status == catalog.StatusRunning && b.Attempts == 1 && b.HeartbeatAt.After(b.StartedAt)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(testTenant, 30, 5)
			e.enableBYOK(testTenant, true)
			job := e.request(testTenant)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			cr := &crash{cancel: cancel}
			_, h := e.build(e.svcLogger(), func(o *backup.Options) {
				o.Blobs = &faultBlobs{Store: o.Blobs, c: cr, crashOn: c.blobs}
				o.Catalog = &faultCatalog{Store: o.Catalog, c: cr, crashBefore: c.before, crashAfter: c.after}
				o.Leases = &faultLeases{Leases: o.Leases, c: cr}
				if c.name == "at-first-heartbeat" {
					o.HeartbeatEvery = 50 * time.Millisecond
					o.Source = slowSource{Source: o.Source, delay: 300 * time.Millisecond}
				}
			})
			rec := e.deliver(ctx, h, job, 1)
			if !cr.dead.Load() {
				t.Fatalf("the fault never fired (worker answered %d)", rec.Code)
			}
			if rec.Code == 200 && !c.committed {
				t.Fatalf("killed worker acknowledged the message")
			}
			b := e.row(testTenant, job.BackupID)
			if c.committed {
				e.verifyBackup(b)
			} else if b.Status != catalog.StatusRunning {
				t.Fatalf("after the kill the row is %s, want running (nothing could write it)", b.Status)
			}

			// Too soon: the killed attempt's heartbeat is fresh, so the
			// redelivery waits (unless the backup had committed).
			if !c.committed {
				if rec := e.deliver(t.Context(), e.handler, job, 2); rec.Code == 200 {
					t.Fatalf("redelivery during a fresh heartbeat acknowledged: %s", rec.Body)
				}
			}
			e.clock.Advance(2 * time.Minute)
			if rec := e.deliver(t.Context(), e.handler, job, 3); rec.Code != 200 {
				t.Fatalf("redelivery = %d %s", rec.Code, rec.Body)
			}
			b = e.row(testTenant, job.BackupID)
			e.checkMatchesSource(testTenant, e.verifyBackup(b))
			wantAttempts := 2
			if c.committed {
				wantAttempts = 1
			}
			if b.Attempts != wantAttempts {
				t.Errorf("attempts = %d, want %d", b.Attempts, wantAttempts)
			}
			// A killed attempt's last uploads may still land after the retry
			// cleared the prefix (the storage service finishes a request
			// its client abandoned): they sit in the killed attempt's own
			// directory, never the committed one, and the sweep removes them.
			if _, err := e.svc.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
			e.verifyBackup(e.row(testTenant, job.BackupID))
			dir := strings.TrimSuffix(b.ManifestBlob, "manifest")
			for _, n := range e.blobNames(testTenant + "/") {
				if !strings.HasPrefix(n, dir) {
					t.Errorf("blob %s of the killed attempt left behind", n)
				}
			}
			if n := e.emu.CountOps(custVault, "wrapKey"); n != wantAttempts {
				t.Errorf("wrapKey calls = %d, want one per attempt (%d)", n, wantAttempts)
			}
		})
	}
}

// Transient storage errors are retried with backoff inside one attempt.
func TestTransientStorageErrorsRetried(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 10, 3)
	fb := &faultBlobs{c: &crash{cancel: func() {}}}
	fb.transient.Store(3)
	_, h := e.build(e.svcLogger(), func(o *backup.Options) { fb.Store = o.Blobs; o.Blobs = fb })
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), h, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	e.verifyBackup(b)
	if b.Attempts != 1 || fb.puts.Load() != int32(b.Chunks)+1+3 {
		t.Errorf("attempts %d, puts %d for %d chunks + manifest + 3 retries", b.Attempts, fb.puts.Load(), b.Chunks)
	}
}

// A failure that persists leaves the row for the retry (running, heartbeat
// cleared, message redelivered at once); on the final delivery the backup
// is marked failed with a reason and its blobs are removed.
func TestPersistentFailureMarkedFailedOnFinalDelivery(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 5, 2)
	fb := &faultBlobs{c: &crash{cancel: func() {}}}
	fb.transient.Store(1 << 30)
	_, h := e.build(e.svcLogger(), func(o *backup.Options) {
		fb.Store = o.Blobs
		o.Blobs = fb
		o.Retry = &blobstore.RetryOptions{MaxAttempts: 2, BaseDelay: time.Millisecond}
	})
	job := e.request(testTenant)
	for dq := 1; dq < 5; dq++ {
		if rec := e.deliver(t.Context(), h, job, dq); rec.Code == 200 {
			t.Fatalf("delivery %d acknowledged a failed attempt", dq)
		}
		if b := e.row(testTenant, job.BackupID); b.Status != catalog.StatusRunning || !b.HeartbeatAt.IsZero() || b.Attempts != dq {
			t.Fatalf("after delivery %d row = %+v", dq, b)
		}
	}
	if rec := e.deliver(t.Context(), h, job, 5); rec.Code != 200 {
		t.Fatalf("final delivery = %d", rec.Code)
	}
	b := e.row(testTenant, job.BackupID)
	if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("row = %+v", b)
	}
	if strings.Contains(b.Error.Message, "injected") {
		t.Errorf("error message leaks the cause: %q", b.Error.Message)
	}
	if n := e.blobNames(testTenant + "/"); len(n) != 0 {
		t.Errorf("failed backup left blobs: %v", n)
	}
}

// Two backups of one tenant never run at once: while one runs, the
// other's job is refused with a retry (not lost) and runs once the first is
// done; a job whose last delivery still finds the lease held is marked
// failed with Conflict. A redelivery of the running backup itself waits too.
func TestTenantLease(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 10, 2)
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	_, slow := e.build(e.svcLogger(), func(o *backup.Options) {
		o.Source = gatedSource{Source: o.Source, gate: gate, started: started}
	})
	a, b, c := e.request(testTenant), e.request(testTenant), e.request(testTenant)

	doneA := make(chan int, 1)
	go func() { doneA <- e.deliver(t.Context(), slow, a, 1).Code }()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("backup A never started")
	}
	if rec := e.deliver(t.Context(), e.handler, b, 1); rec.Code == 200 {
		t.Fatalf("B ran while A held the lease: %s", rec.Body)
	}
	if st := e.row(testTenant, b.BackupID).Status; st != catalog.StatusQueued {
		t.Fatalf("B is %s, want still queued", st)
	}
	if rec := e.deliver(t.Context(), e.handler, a, 2); rec.Code == 200 {
		t.Fatal("a redelivery of A ran while A was running")
	}
	if rec := e.deliver(t.Context(), e.handler, c, 5); rec.Code != 200 {
		t.Fatalf("C's final delivery = %d", rec.Code)
	}
	rc := e.row(testTenant, c.BackupID)
	if rc.Status != catalog.StatusFailed || rc.Error == nil || rc.Error.Code != errcode.Conflict || !strings.Contains(rc.Error.Message, a.BackupID) {
		t.Fatalf("C = %+v", rc)
	}

	close(gate)
	if code := <-doneA; code != 200 {
		t.Fatalf("A = %d", code)
	}
	if rec := e.deliver(t.Context(), e.handler, b, 2); rec.Code != 200 {
		t.Fatalf("B after A = %d %s", rec.Code, rec.Body)
	}
	e.verifyBackup(e.row(testTenant, a.BackupID))
	e.verifyBackup(e.row(testTenant, b.BackupID))
}

// gatedSource blocks reading records until gate closes.
type gatedSource struct {
	backup.Source
	gate    chan struct{}
	started chan struct{}
}

func (g gatedSource) Records(ctx context.Context, tenant string) iter.Seq2[assets.Record, error] {
	return func(yield func(assets.Record, error) bool) {
		select {
		case g.started <- struct{}{}:
		default:
		}
		select {
		case <-g.gate:
		case <-ctx.Done():
			yield(assets.Record{}, ctx.Err())
			return
		}
		for r, err := range g.Source.Records(ctx, tenant) {
			if !yield(r, err) {
				return
			}
		}
	}
}

// slowSource delays the listing of records so heartbeats happen.
type slowSource struct {
	backup.Source
	delay time.Duration
}

func (s slowSource) Records(ctx context.Context, tenant string) iter.Seq2[assets.Record, error] {
	return func(yield func(assets.Record, error) bool) {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			yield(assets.Record{}, ctx.Err())
			return
		}
		for r, err := range s.Source.Records(ctx, tenant) {
			if !yield(r, err) {
				return
			}
		}
	}
}
