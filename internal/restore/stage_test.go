package restore_test

import (
	"bytes"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"

	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// etags are the listed ETags of a tenant's files: staging a block must not
// change a blob's version, not only its content.
func (e *env) etags(tenant string) map[string]string {
	e.t.Helper()
	m := map[string]string{}
	for f, err := range e.store.Files(e.t.Context(), tenant) {
		must(e.t, err)
		m[f.Path] = f.ETag
	}
	return m
}

// TestStagedBlocksInvisibleUntilVerified: pass 1 stages the files' blocks
// on the target blobs while it authenticates; when the backup then fails
// verification (its final files chunk is gone, so every earlier file was
// already staged), nothing is committed and the target's content,
// properties, metadata, ETags and listing are unchanged. A later restore of
// the repaired backup (a new attempt, new block ids, with the failed one's
// uncommitted blocks still on the blobs) ends with exactly the backup.
func TestStagedBlocksInvisibleUntilVerified(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 10, 3)
	// Two files above the inline size, so blocks are staged: the first
	// is read whole long before the missing last chunk (the small ones are
	// kept in the spool and must stay invisible too).
	e.backupChunkSize = 64 << 10
	big := bytes.Repeat([]byte("big file "), (1<<20)/9+2)
	for _, p := range []string{"docs/a-big.bin", "docs/z-big.bin"} {
		must(t, e.store.PutFile(t.Context(), "acme", assets.File{Path: p, Size: int64(len(big))}, bytes.NewReader(big)))
	}
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	if b.Streams["files"] < 2 {
		t.Fatalf("backup too small: %v", b.Streams)
	}
	e.disturb("acme")
	before, beforeTags := e.snapshot("acme"), e.etags("acme")

	last := e.chunk(b, "files", b.Streams["files"]-1)
	saved := e.get(last)
	e.remove(last)
	op := e.token("acme", auth.RoleBackupOperator)
	wantFailed(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"}), "IntegrityCheckFailed")
	if e.target.staged == 0 {
		t.Fatalf("no block was staged before verification failed: the test does not exercise staging")
	}
	if e.target.filesPut != 0 {
		t.Fatalf("%d files committed by a restore that failed verification", e.target.filesPut)
	}
	if d := e.snapshot("acme").diff(before); d != "" {
		t.Fatalf("failed restore changed the target: %s", d)
	}
	if got := e.etags("acme"); len(got) != len(beforeTags) {
		t.Fatalf("listing changed: %v, was %v", got, beforeTags)
	} else {
		for p, tag := range beforeTags {
			if got[p] != tag {
				t.Fatalf("file %s changed version: ETag %s, was %s", p, got[p], tag)
			}
		}
	}

	e.put(last, saved)
	wantSucceeded(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"}), progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("after the second attempt: %s", d)
	}
}
