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
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/restore"
)

func (e *env) chunk(b *catalog.Backup, stream string, i int64) string {
	l, err := blobstore.NewLayout(b.Tenant, b.BackupID, "a1")
	must(e.t, err)
	return l.Chunk(stream, i)
}

func (e *env) get(name string) []byte {
	data, err := e.blobs.GetBlob(e.t.Context(), name)
	must(e.t, err)
	return data
}

func (e *env) put(name string, data []byte) { must(e.t, e.blobs.PutBlob(e.t.Context(), name, data)) }

func (e *env) remove(name string) {
	n, err := e.blobs.DeletePrefix(e.t.Context(), name)
	must(e.t, err)
	if n != 1 {
		e.t.Fatalf("deleted %d blobs for %s", n, name)
	}
}

// TestTamperingFailsAndLeavesTargetUntouched: every kind of tampering with
// a completed backup fails the restore with IntegrityCheckFailed before
// anything is written, dry runs included.
func TestTamperingFailsAndLeavesTargetUntouched(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	other := e.makeBackup("acme", keywrap.Customer)
	cases := []struct {
		name   string
		tamper func(b *catalog.Backup)
	}{
		{"flipped byte in a chunk", func(b *catalog.Backup) {
			name := e.chunk(b, "files", 1)
			data := e.get(name)
			data[len(data)/2] ^= 0x01
			e.put(name, data)
		}},
		{"missing chunk", func(b *catalog.Backup) { e.remove(e.chunk(b, "records", 0)) }},
		{"swapped chunks", func(b *catalog.Backup) {
			a, c := e.get(e.chunk(b, "records", 0)), e.get(e.chunk(b, "records", 1))
			e.put(e.chunk(b, "records", 0), c)
			e.put(e.chunk(b, "records", 1), a)
		}},
		{"truncated: final chunk removed", func(b *catalog.Backup) { e.remove(e.chunk(b, "files", b.Streams["files"]-1)) }},
		{"chunk from another backup", func(b *catalog.Backup) {
			e.put(e.chunk(b, "files", 0), e.get(e.chunk(other, "files", 0)))
		}},
		{"altered manifest", func(b *catalog.Backup) {
			data := e.get(b.ManifestBlob)
			data[len(data)-40] ^= 0x80 // in the stream table, under the MAC
			e.put(b.ManifestBlob, data)
		}},
		{"manifest of another backup", func(b *catalog.Backup) { e.put(b.ManifestBlob, e.get(other.ManifestBlob)) }},
		{"missing manifest", func(b *catalog.Backup) { e.remove(b.ManifestBlob) }},
	}
	op := e.token("acme", auth.RoleBackupOperator)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			b := e.makeBackup("acme", keywrap.Customer)
			if b.Streams["records"] < 2 || b.Streams["files"] < 2 {
				t.Fatalf("backup too small to tamper with: %v", b.Streams)
			}
			e.disturb("acme")
			before := e.snapshot("acme")
			c.tamper(b)
			for _, body := range []map[string]any{
				{"backupId": b.BackupID, "mode": "replace"},
				{"backupId": b.BackupID, "dryRun": true},
			} {
				wantFailed(t, e.runRestore(op, "acme", body), "IntegrityCheckFailed")
				if d := e.snapshot("acme").diff(before); d != "" {
					t.Fatalf("tampered restore changed the target: %s", d)
				}
			}
		})
	}
}

// TestCrashMidWriteThenRedelivery: an attempt whose invocation ends while
// writing leaves the row running with its heartbeat cleared, so the
// redelivery may restart it at once (internal/job). A worker that died
// without a word leaves a fresh heartbeat: a redelivery then is retried
// (the last one acknowledged, the running attempt owns the row), and once
// the heartbeat is stale the restore restarts and ends correct.
func TestCrashMidWriteThenRedelivery(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 10, 3)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	id := e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.target.beforeFile = func(context.Context) error {
		cancel() // the host (or the instance) goes away mid-write
		return context.Canceled
	}
	req, err := invoke.DecodeQueue(hostPayload(t, e.queue.jobs[0], 1), "")
	must(t, err)
	job, err := jobqueue.DecodeRestoreJob(req.Message.Text)
	must(t, err)
	if err := e.svc.RunJob(ctx, job, jobqueue.Delivery{MessageID: req.Message.ID, DequeueCount: req.Message.DequeueCount}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted attempt returned %v", err)
	}
	e.target.beforeFile = nil
	r, err := e.cat.GetRestore(t.Context(), "acme", id)
	must(t, err)
	if r.State != catalog.RestoreRunning || !r.HeartbeatAt.IsZero() {
		t.Fatalf("after the interrupted attempt the restore is %s with heartbeat %v, want running with the heartbeat cleared", r.State, r.HeartbeatAt)
	}
	// A worker that died without a word: its last heartbeat is fresh.
	r.HeartbeatAt = r.StartedAt
	must(t, e.cat.UpdateRestore(t.Context(), r))
	if code := e.deliver(2); code != http.StatusInternalServerError {
		t.Fatalf("redelivery during a fresh heartbeat = %d, want 500 (retry later)", code)
	}
	if code := e.deliver(restore.DefaultMaxDequeueCount); code != http.StatusOK {
		t.Fatalf("last redelivery during a fresh heartbeat = %d, want 200 (acknowledged)", code)
	}
	if st := e.status("acme", id); st.State != "running" {
		t.Fatalf("after the acknowledged redelivery the restore is %+v, want running", st)
	}
	e.clock.advance(3 * time.Minute)
	if code := e.deliver(3); code != http.StatusOK {
		t.Fatalf("redelivery after the heartbeat went stale = %d\n%s", code, e.logs)
	}
	wantSucceeded(t, e.status("acme", id), progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("after the restarted restore: %s", d)
	}
}

// garbleOnce is a backups store whose first read of each chunk arrives
// damaged, as a body corrupted in transit would: GetBlobInto no longer
// checks Content-MD5 (the chunks are authenticated), so the restore must
// read a chunk that fails authentication once more.
type garbleOnce struct {
	blobstore.Store
	mu      sync.Mutex
	seen    map[string]bool
	garbled int
}

func (g *garbleOnce) GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error) {
	data, err := blobstore.GetInto(ctx, g.Store, name, buf, limit)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil && strings.Contains(name, "/chunks/") && !g.seen[name] {
		g.seen[name] = true
		g.garbled++
		data[len(data)/3] ^= 0x10
	}
	return data, err
}

// TestChunkDamagedInTransitIsReadAgain: every chunk's first read is
// damaged; the restore reads each once more and succeeds with the backup's
// exact content. (Tampering that persists still fails: the test above.)
func TestChunkDamagedInTransitIsReadAgain(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	g := &garbleOnce{Store: e.blobs, seen: map[string]bool{}}
	e.blobs = g
	e.wire(e.keys)
	got := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	if got.State != "succeeded" {
		t.Fatalf("restore %s: %+v", got.State, got.Error)
	}
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("restored target differs from the backup: %s", d)
	}
	if n := b.Streams["records"] + b.Streams["files"]; int64(g.garbled) != n {
		t.Fatalf("%d chunk reads damaged, want all %d", g.garbled, n)
	}
}
