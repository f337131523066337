package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// sealedChunk is the stored size of a full chunk of the test backups.
const sealedChunk = chunkSize + 16

// TestBackupAboveSpoolLimitChunksChangedBetweenPasses: a backup larger
// than the spool limit (the records and file list fit it, the whole
// backup doesn't) whose chunks are deleted and changed in the backups
// container once pass 1 verified it, before pass 2 writes: the write pass
// uses only what pass 1 verified, so the restore writes exactly the
// verified backup, never half of it.
func TestBackupAboveSpoolLimitChunksChangedBetweenPasses(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 80, 12)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	records, files := b.Streams["records"], b.Streams["files"]
	e.spoolLimit = records*sealedChunk + 16<<10 // the records and 12 file headers, not the files
	if records < 12 || (records+files)*sealedChunk <= e.spoolLimit {
		t.Fatalf("backup too small for the test: %v chunks, spool limit %d", b.Streams, e.spoolLimit)
	}
	e.wire(e.keys)
	e.disturb("acme")

	var tampered atomic.Bool
	e.target.beforeRecords = func() {
		if tampered.Swap(true) {
			return
		}
		// Far enough from chunk 0 that no prefetch read them already.
		e.remove(e.chunk(b, "records", records-3))
		name := e.chunk(b, "records", records-6)
		data := e.get(name)
		data[len(data)/2] ^= 0x01
		e.put(name, data)
		e.remove(e.chunk(b, "files", files-2))
		name = e.chunk(b, "files", files-5)
		data = e.get(name)
		data[len(data)/2] ^= 0x01
		e.put(name, data)
	}
	st := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	if !tampered.Load() {
		t.Fatal("the write pass never started")
	}
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("target is not the verified backup: %s", d)
	}
}

// TestBackupTooLargeForSpoolRefusedBeforeWriting: a restore whose records,
// or whose records and file headers, don't fit the spool fails with
// Conflict and a message saying nothing was written, and the target is
// unchanged (staged blocks are invisible).
func TestBackupTooLargeForSpoolRefusedBeforeWriting(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 40, 6)
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	before := e.snapshot("acme")
	records := b.Streams["records"] * sealedChunk // at least the stored size
	for name, limit := range map[string]int64{
		"records don't fit":      records / 2,
		"file headers don't fit": records + 100,
	} {
		t.Run(name, func(t *testing.T) {
			e.t = t
			e.spoolLimit = limit
			e.wire(e.keys)
			staged := e.target.staged
			msg := wantFailed(t, e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme",
				map[string]any{"backupId": b.BackupID, "mode": "replace"}), "Conflict")
			if !strings.Contains(msg, "Nothing was written to the target tenant") || !strings.Contains(msg, "RESTORE_SPOOL_LIMIT_MB") {
				t.Fatalf("message %q", msg)
			}
			if d := e.snapshot("acme").diff(before); d != "" {
				t.Fatalf("refused restore changed the target: %s", d)
			}
			if name == "records don't fit" && e.target.staged != staged {
				t.Fatalf("refused restore staged %d blocks", e.target.staged-staged)
			}
		})
	}
	// A dry run writes nothing, so it needs no spool.
	e.t = t
	wantSucceeded(t, e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}),
		progress{b.Records, b.Files, b.Bytes})
}

// TestPruneOnlyAfterEveryWrite: a replace restore deletes nothing before
// every record is upserted and every file committed.
func TestPruneOnlyAfterEveryWrite(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 30, 5)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	var events []string
	e.target.events = &events
	wantSucceeded(t, e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"}),
		progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatal(d)
	}
	e.target.mu.Lock()
	defer e.target.mu.Unlock()
	lastWrite, firstPrune := -1, len(events)
	for i, ev := range events {
		if ev != "prune" {
			lastWrite = i
		} else if firstPrune == len(events) {
			firstPrune = i
		}
	}
	if lastWrite < 0 || firstPrune == len(events) || firstPrune < lastWrite {
		t.Fatalf("first prune step at %d, last write at %d of %d events", firstPrune, lastWrite, len(events))
	}
}

// TestFailureAfterFirstWriteSaysTargetState: a restore that fails while
// committing files (last delivery) reports how far it got (records
// upserted, files committed, nothing pruned) and has indeed pruned nothing.
func TestFailureAfterFirstWriteSaysTargetState(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 20, 5)
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	var calls, committed atomic.Int32
	var flushed atomic.Bool
	var once sync.Once
	ready := make(chan struct{})
	e.target.onEvent = func(what string) {
		switch what {
		case "flush":
			flushed.Store(true)
		case "commit":
			committed.Add(1)
		}
		if flushed.Load() && committed.Load() == 2 {
			once.Do(func() { close(ready) })
		}
	}
	e.target.beforeFile = func(ctx context.Context) error {
		if calls.Add(1) <= 2 {
			return nil
		}
		// Records are written concurrently with the commits: fail once they
		// and the first two files are in, so the message's counts are known.
		select {
		case <-ready:
		case <-ctx.Done():
		}
		return errcode.New(errcode.ServiceUnavailable, "A file could not be written to the target tenant's storage; the restore can be retried.")
	}
	id := e.startRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	if code := e.deliver(5); code != http.StatusOK {
		t.Fatalf("RestoreWorker = %d\n%s", code, e.logs)
	}
	msg := wantFailed(t, e.status("acme", id), "ServiceUnavailable")
	for _, part := range []string{
		"partly restored",
		fmt.Sprintf("%d of %d records upserted", b.Records, b.Records),
		fmt.Sprintf("2 of %d files committed", b.Files),
		"nothing was deleted",
	} {
		if !strings.Contains(msg, part) {
			t.Fatalf("message %q lacks %q", msg, part)
		}
	}
	if strings.Contains(msg, "Nothing was written") {
		t.Fatalf("message %q", msg)
	}
	snap := e.snapshot("acme")
	var extraRecord, extraFile bool
	for _, r := range snap.Records {
		extraRecord = extraRecord || r.RowKey == "zz-extra"
	}
	for _, f := range snap.Files {
		extraFile = extraFile || f.File.Path == "docs/extra.txt"
	}
	if !extraRecord || !extraFile {
		t.Fatalf("failed restore pruned: extra record kept %v, extra file kept %v", extraRecord, extraFile)
	}
}

// TestRestoreHeapFlatInFileCount: the heap the restore retains when its
// write pass starts committing files does not grow with the number of
// files (each with ~6 KB of metadata): 2,000 files vs 100. On the Azure
// adapter: an in-memory target would hold the files in this heap.
func TestRestoreHeapFlatInFileCount(t *testing.T) {
	e := newAzureEnv(t)
	e.backupChunkSize = 1 << 20 // few chunks: the test is about files
	meta := strings.Repeat("m", 1500)
	seedFiles := func(tenant string, n int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < n; i += 4 {
					f := assets.File{Path: fmt.Sprintf("f%05d", i), Size: 1, ContentType: "text/plain",
						Metadata: map[string]string{"a": meta, "b": meta, "c": meta, "d": meta + fmt.Sprint(i)}}
					if err := e.store.PutFile(t.Context(), tenant, f, bytes.NewReader([]byte{'x'})); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	measure := func(tenant string, n int) uint64 {
		start := time.Now()
		seedFiles(tenant, n)
		seeded := time.Now()
		b := e.makeBackup(tenant, keywrap.Platform)
		backedUp := time.Now()
		defer func() {
			t.Logf("%d files: seed %v, backup %v, restore %v", n, seeded.Sub(start), backedUp.Sub(seeded), time.Since(backedUp))
		}()
		var once sync.Once
		var heap uint64
		e.target.beforeFile = func(context.Context) error {
			once.Do(func() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap = ms.HeapAlloc
			})
			return nil
		}
		defer func() { e.target.beforeFile = nil }()
		wantSucceeded(t, e.runRestore(e.token(tenant, auth.RoleBackupOperator), tenant, map[string]any{"backupId": b.BackupID, "mode": "merge"}),
			progress{0, b.Files, b.Bytes})
		return heap
	}
	small := measure("small", 100)
	large := measure("large", 2000)
	growth := int64(large) - int64(small)
	t.Logf("retained heap at the first commit: %d B with 100 files, %d B with 2000 (%+d B, %d B per extra file)", small, large, growth, growth/1900)
	// Before file headers were spooled, each extra file kept ~7.8 KB; the
	// spool keeps tens of bytes. The bound leaves room for heap noise of a
	// loaded machine (up to ~2 MB seen between the two measurements).
	if growth > 1900*4096 {
		t.Fatalf("restore heap grows with the file count: %+d B for 1900 more files", growth)
	}
}

// TestPruneOnlyWhatTheTargetHeld: a replace restore reads back (to prune)
// only the side the target held anything of before the write pass: into
// a fresh tenant it prunes nothing and reads nothing back; a target with
// only an extra file loses that file and gets the backup's records.
func TestPruneOnlyWhatTheTargetHeld(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 30, 5)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	op := e.token("", auth.RolePlatformOperator) // restores into other tenants

	var events []string
	e.target.events = &events
	wantSucceeded(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "targetTenant": "acme-copy", "mode": "replace"}),
		progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme-copy").diff(want); d != "" {
		t.Fatal(d)
	}
	e.target.mu.Lock()
	if slices.Contains(events, "prune") {
		t.Fatalf("a fresh target was pruned: %v", events)
	}
	events = events[:0]
	e.target.mu.Unlock()

	must(t, e.store.PutFile(t.Context(), "acme-sandbox", assets.File{Path: "docs/extra.txt", Size: 5, ContentType: "text/plain"}, strings.NewReader("extra")))
	wantSucceeded(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "targetTenant": "acme-sandbox", "mode": "replace"}),
		progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme-sandbox").diff(want); d != "" {
		t.Fatalf("the extra file was kept or records differ: %s", d)
	}
	e.target.mu.Lock()
	defer e.target.mu.Unlock()
	if !slices.Contains(events, "prune") {
		t.Fatalf("a target holding a file was not pruned: %v", events)
	}
}
