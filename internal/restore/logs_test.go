package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/assets"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/restore"
)

// marker is in every record id, property name and value, file path,
// metadata name and value, content property and file content of the
// seeded tenant. Tenant data must never reach a log line (API.md §3):
// not through messages, not through error chains.
const marker = "Zq9LeakMark"

func (e *env) seedMarked(tenant string) {
	e.t.Helper()
	ctx := e.t.Context()
	w, err := e.store.NewRecordWriter(tenant)
	must(e.t, err)
	for i := range 6 {
		must(e.t, w.Put(ctx, assets.Record{RowKey: fmt.Sprintf("rec-%s-%02d", marker, i), Properties: []assets.Property{
			{Name: "Name" + marker, Type: assets.TypeString, Value: "value " + marker},
			{Name: "Note" + marker, Type: assets.TypeString, Value: strings.Repeat(marker+" ", 30)},
		}}))
	}
	must(e.t, w.Flush(ctx))
	for i := range 4 {
		e.putMarkedFile(tenant, i, "content "+marker+" ")
	}
}

func markedPath(i int) string { return fmt.Sprintf("dir-%s/file-%s-%02d.txt", marker, marker, i) }

func (e *env) putMarkedFile(tenant string, i int, text string) {
	e.t.Helper()
	body := bytes.Repeat([]byte(text), 150*(i+1)) // several 1 KiB chunks each
	f := assets.File{
		Path: markedPath(i), Size: int64(len(body)), ContentType: "text/plain",
		ContentDisposition: `attachment; filename="` + marker + `.txt"`,
		Metadata:           map[string]string{"m" + marker: "v" + marker},
	}
	must(e.t, e.store.PutFile(e.t.Context(), tenant, f, bytes.NewReader(body)))
}

// brokenStore is an assets store over a table and a container that don't
// exist: every read and write fails with the service's own 404, whose SDK
// error text names the request URL (the file path, the record id).
func (e *env) brokenStore() *assetsazure.Store {
	e.t.Helper()
	az := azuriteFor(e.t)
	tables, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	must(e.t, err)
	blobSvc, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	must(e.t, err)
	return assetsazure.New(tables.NewClient("Nosuchtable"), blobSvc.ServiceClient().NewContainerClient("nosuch-container"),
		&assetsazure.Options{Logger: e.log})
}

// faultySource is the backup's source with one fault per attempt: a file
// rewritten between listing and reading, or a file read that the storage
// service refuses.
type faultySource struct {
	backup.Source
	e      *env
	broken *assetsazure.Store
	mode   atomic.Int32 // 0 none, 1 change file #2, 2 file #3 read fails, 3 delete file #4
}

func (s *faultySource) OpenFile(ctx context.Context, tenant string, f assets.File) (io.ReadCloser, error) {
	// Called from the backup's goroutines: failures are returned, not Fatal.
	switch {
	case s.mode.Load() == 1 && f.Path == markedPath(1):
		body := "rewritten " + marker
		g := f
		g.Size = int64(len(body))
		if err := s.e.store.PutFile(ctx, tenant, g, strings.NewReader(body)); err != nil {
			return nil, fmt.Errorf("test: rewriting a file: %w", err)
		}
	case s.mode.Load() == 2 && f.Path == markedPath(2):
		return s.broken.OpenFile(ctx, tenant, f)
	case s.mode.Load() == 3 && f.Path == markedPath(3):
		if err := s.e.store.DeleteFile(ctx, tenant, f.Path); err != nil {
			return nil, fmt.Errorf("test: deleting a file: %w", err)
		}
	}
	return s.Source.OpenFile(ctx, tenant, f)
}

// splitTarget sends the record writes or the file writes of a restore to
// another target.
type splitTarget struct {
	restore.Target
	records, files restore.Target
}

func (s splitTarget) NewRecordWriter(tenant string) (restore.RecordWriter, error) {
	if s.records != nil {
		return s.records.NewRecordWriter(tenant)
	}
	return s.Target.NewRecordWriter(tenant)
}

func (s splitTarget) PutFileBytes(ctx context.Context, tenant string, f assets.File, data []byte) error {
	if s.files != nil {
		return s.files.PutFileBytes(ctx, tenant, f, data)
	}
	return s.Target.PutFileBytes(ctx, tenant, f, data)
}

func (s splitTarget) StageBlock(ctx context.Context, tenant, path, id string, data []byte) error {
	if s.files != nil {
		return s.files.StageBlock(ctx, tenant, path, id, data)
	}
	return s.Target.StageBlock(ctx, tenant, path, id, data)
}

// TestNoTenantDataInLogs: a backup and restores of a tenant whose every
// id, name, path, value and content carries a marker, through the failures
// that put error chains in the logs (a file changed mid-backup, a file the
// storage service refuses to read, a file deleted mid-backup, failed record
// and file writes to the target, a tampered chunk) and the normal runs, log
// no marker.
func TestNoTenantDataInLogs(t *testing.T) {
	e := newEnv(t)
	const tenant = "logmark"
	e.seedMarked(tenant)
	broken := e.brokenStore()

	src := &faultySource{Source: e.store, e: e, broken: broken}
	bs, err := backup.New(backup.Options{
		Source: src, Catalog: e.cat, Blobs: e.blobs, Wrapper: e.wrapper, Keys: e.keys,
		PlatformKey: e.platRef, Leases: e.leases, Queue: e.queue, Logger: e.log, ChunkSize: 1024, Parallelism: 2,
	})
	must(t, err)
	b, err := bs.Request(t.Context(), tenant, catalog.ReasonManual)
	must(t, err)
	job := e.queue.backups[len(e.queue.backups)-1]
	for attempt, mode := range []int32{1, 2} {
		src.mode.Store(mode)
		if err := bs.Run(t.Context(), job, attempt+1); err == nil {
			t.Fatalf("backup attempt with fault %d succeeded", mode)
		}
	}
	src.mode.Store(3) // a deleted file is left out; the backup completes
	must(t, bs.Run(t.Context(), job, 3))
	b, err = e.cat.GetBackup(t.Context(), tenant, b.BackupID)
	must(t, err)
	if b.Status != catalog.StatusCompleted || b.Files != 3 || len(e.logs.Records("a file was deleted while the backup ran; it is left out")) != 1 {
		t.Fatalf("backup = %+v", b)
	}
	failed := e.logs.Records("backup attempt failed; it is retried")
	if len(failed) != 2 || !strings.Contains(fmt.Sprint(failed[0]["err"]), "changed while it was being backed up") ||
		!strings.Contains(fmt.Sprint(failed[1]["err"]), "ContainerNotFound") {
		t.Fatalf("failed attempts logged: %v", failed)
	}

	op := e.token("", auth.RolePlatformOperator)
	// Normal runs: a replace that prunes marked records and files, a dry run.
	e.seedMarked("logmark-copy")
	e.putMarkedFile("logmark-copy", 7, "extra "+marker)
	wantSucceeded(t, e.runRestore(op, tenant, map[string]any{"backupId": b.BackupID, "targetTenant": "logmark-copy", "mode": "replace"}),
		progress{b.Records, b.Files, b.Bytes})
	wantSucceeded(t, e.runRestore(op, tenant, map[string]any{"backupId": b.BackupID, "dryRun": true}),
		progress{b.Records, b.Files, b.Bytes})

	// Target write failures, retried then final.
	good := e.target.Target
	for _, c := range []struct {
		name   string
		target restore.Target
	}{
		{"records", splitTarget{Target: good, records: restore.StoreTarget(broken)}},
		{"files", splitTarget{Target: good, files: restore.StoreTarget(broken)}},
	} {
		e.target.Target = c.target
		id := e.startRestore(op, tenant, map[string]any{"backupId": b.BackupID, "targetTenant": "logmark-" + c.name, "mode": "merge"})
		if code := e.deliver(1); code == http.StatusOK {
			t.Fatalf("%s: first delivery of a failing restore = %d", c.name, code)
		}
		if code := e.deliver(5); code != http.StatusOK {
			t.Fatalf("%s: last delivery = %d", c.name, code)
		}
		wantFailed(t, e.status(tenant, id), "ServiceUnavailable")
	}
	e.target.Target = good
	if len(e.logs.Records("record transaction failed, upserting one by one")) == 0 {
		t.Fatalf("the failed record transaction was not logged:\n%s", e.logs)
	}

	// A tampered chunk of the committed attempt.
	var chunk string
	must(t, e.blobs.List(t.Context(), strings.TrimSuffix(b.ManifestBlob, "manifest"), func(i blobstore.Info) error {
		if chunk == "" && !strings.HasSuffix(i.Name, "manifest") {
			chunk = i.Name
		}
		return nil
	}))
	data := e.get(chunk)
	data[len(data)/2] ^= 1
	e.put(chunk, data)
	wantFailed(t, e.runRestore(op, tenant, map[string]any{"backupId": b.BackupID, "targetTenant": "logmark-tamper", "mode": "replace"}),
		"IntegrityCheckFailed")

	logs := e.logs.String()
	if n := len(e.logs.Records("restore failed")); n != 3 {
		t.Fatalf("%d failed restores logged, want 3:\n%s", n, logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(strings.ToLower(line), strings.ToLower(marker)) {
			t.Errorf("tenant data in a log line: %s", line)
		}
	}
}
