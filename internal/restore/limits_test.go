package restore_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/lease"
)

// gateStore holds the first chunk read until release is closed, so a test
// can act while a restore is verifying.
type gateStore struct {
	blobstore.Store
	once             sync.Once
	entered, release chan struct{}
}

func (g *gateStore) GetBlob(ctx context.Context, name string) ([]byte, error) {
	if strings.Contains(name, "/chunks/") {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.GetBlob(ctx, name)
}

// TestDryRunAndBackupNeverRunAtOnce: a dry run takes the tenant's lease
// like any restore. While a backup of the tenant holds it, the dry run is
// retried without starting; while the dry run verifies, a backup of the
// tenant can't take it.
func TestDryRunAndBackupNeverRunAtOnce(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 3, 2)
	b := e.makeBackup("acme", keywrap.Platform)
	op := e.token("acme", auth.RoleBackupOperator)

	// A backup runs (it holds the lease as backups do, holder = backupId).
	bl, err := e.leases.Acquire(t.Context(), "acme", "20260101T000000.000Z-runningbackupaaaa", time.Hour)
	must(t, err)
	id := e.startRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
	if code := e.deliver(1); code != http.StatusInternalServerError {
		t.Fatalf("dry run while a backup runs = %d, want 500 (retried)", code)
	}
	if st := e.status("acme", id); st.State != "queued" {
		t.Fatalf("dry run started while a backup ran: %+v", st)
	}
	must(t, e.leases.Release(t.Context(), bl))

	// The dry run verifies; a backup of the tenant is refused meanwhile.
	gate := &gateStore{Store: e.blobs, entered: make(chan struct{}), release: make(chan struct{})}
	e.blobs = gate
	e.wire(e.keys)
	done := make(chan int, 1)
	go func() { done <- e.deliver(2) }()
	select {
	case <-gate.entered:
	case code := <-done:
		t.Fatalf("dry run ended (%d) before reading a chunk", code)
	}
	_, err = e.leases.Acquire(t.Context(), "acme", "20260101T000001.000Z-nextbackupaaaaaaa", time.Minute)
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Holder != "restore:"+id {
		close(gate.release)
		t.Fatalf("backup lease while a dry run verifies: %v, want held by restore:%s", err, id)
	}
	close(gate.release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("dry run = %d; log:\n%s", code, e.logs)
	}
	wantSucceeded(t, e.status("acme", id), progress{b.Records, b.Files, b.Bytes})
	// Released at the end: the next backup may start.
	l, err := e.leases.Acquire(t.Context(), "acme", "20260101T000002.000Z-laterbackupaaaaaa", time.Minute)
	must(t, err)
	must(t, e.leases.Release(t.Context(), l))
}
