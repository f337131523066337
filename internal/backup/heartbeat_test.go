package backup_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
)

// manifestSignal closes stored once the manifest blob is written: the
// pipeline is about to return.
type manifestSignal struct {
	blobstore.Store
	once   sync.Once
	stored chan struct{}
}

func (m *manifestSignal) PutBlob(ctx context.Context, name string, data []byte) error {
	err := m.Store.PutBlob(ctx, name, data)
	if err == nil && strings.HasSuffix(name, "/manifest") {
		m.once.Do(func() { close(m.stored) })
	}
	return err
}

// appliedThenCancelled applies the first heartbeat write, then holds its
// answer until the pipeline has finished and reports the request's context
// error if that context ends meanwhile: Table Storage applied the write,
// the client saw a cancellation (the race of issue 7 point 4).
type appliedThenCancelled struct {
	catalog.Store
	once     sync.Once
	manifest chan struct{}
	hit      chan struct{}
}

func (f *appliedThenCancelled) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	beat := b.Status == catalog.StatusRunning && b.HeartbeatAt.After(b.StartedAt)
	if err := f.Store.UpdateBackup(ctx, b); err != nil || !beat {
		return err
	}
	first := false
	f.once.Do(func() { first = true; close(f.hit) })
	if !first {
		return nil
	}
	<-f.manifest
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
		return nil
	}
}

// TestHeartbeatAppliedButCancelledDoesNotLoseTheCommit: a heartbeat write
// whose request is cancelled after the service applied it must not make
// the commit look like a takeover: the backup completes on the first
// delivery, with one attempt.
func TestHeartbeatAppliedButCancelledDoesNotLoseTheCommit(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 5, 2)
	e.enableBYOK(testTenant, true)
	job := e.request(testTenant)
	fc := &appliedThenCancelled{manifest: make(chan struct{}), hit: make(chan struct{})}
	_, h := e.build(e.svcLogger(), func(o *backup.Options) {
		o.HeartbeatEvery = 20 * time.Millisecond
		o.Source = slowSource{Source: o.Source, delay: 200 * time.Millisecond} // a beat happens before the end
		fc.Store = o.Catalog
		o.Catalog = fc
		o.Blobs = &manifestSignal{Store: o.Blobs, stored: fc.manifest}
	})
	if rec := e.deliver(t.Context(), h, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s; log:\n%s", rec.Code, rec.Body, e.logs)
	}
	select {
	case <-fc.hit:
	default:
		t.Fatal("no heartbeat was written during the backup: the test did not exercise the race")
	}
	b := e.row(testTenant, job.BackupID)
	if b.Status != catalog.StatusCompleted || b.Attempts != 1 {
		t.Fatalf("backup %s after %d attempts, want completed after 1", b.Status, b.Attempts)
	}
	e.verifyBackup(b)
}

// TestEntraTenantRecorded: a customer-key backup records the customer's
// Entra tenant (for restores after BYOK is turned off); a platform-key
// backup records none.
func TestEntraTenantRecorded(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 3, 1)
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	if b := e.row(testTenant, job.BackupID); b.KeySource != "platform" || b.EntraTenantID != "" {
		t.Fatalf("platform-key backup: source %s, Entra tenant %q, want none", b.KeySource, b.EntraTenantID)
	}
	e.enableBYOK(testTenant, true)
	job = e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	if b := e.row(testTenant, job.BackupID); b.KeySource != "customer" || b.EntraTenantID != entraA {
		t.Fatalf("customer-key backup: source %s, Entra tenant %q, want %s", b.KeySource, b.EntraTenantID, entraA)
	}
}
