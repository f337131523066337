package restore_test

import (
	"testing"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// TestRestoresWhatTheBackupPipelineWrote: a backup made by the real
// backup worker (customer key, several chunks per stream) restores into a
// new tenant exactly, and the restore's checks agree with the pipeline's
// catalog row (counts, chunks, layout).
func TestRestoresWhatTheBackupPipelineWrote(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 30, 5)
	want := e.snapshot("acme")
	bs, err := backup.New(backup.Options{
		Source: e.store, Catalog: e.cat, Blobs: e.blobs, Wrapper: e.wrapper, Keys: e.keys,
		PlatformKey: e.platRef, Leases: e.leases, Queue: e.queue, Logger: e.log, ChunkSize: 2048, Parallelism: 2,
	})
	must(t, err)
	b, err := bs.Request(t.Context(), "acme", catalog.ReasonManual)
	must(t, err)
	must(t, bs.Run(t.Context(), e.queue.backups[0], 1))
	b, err = e.cat.GetBackup(t.Context(), "acme", b.BackupID)
	must(t, err)
	if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Customer || b.Chunks < 4 {
		t.Fatalf("backup = %+v", b)
	}
	st := e.runRestore(e.token("", auth.RolePlatformOperator), "acme",
		map[string]any{"backupId": b.BackupID, "targetTenant": "acme-copy", "mode": "replace"})
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme-copy").diff(want); d != "" {
		t.Fatalf("restored copy differs: %s", d)
	}
}
