package restore_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// seed writes assets with every EDM type and every blob property the
// contract says a restore keeps.
func (e *env) seed(tenant string, records, files int) {
	e.t.Helper()
	ctx := e.t.Context()
	w, err := e.store.NewRecordWriter(tenant)
	must(e.t, err)
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456700, time.UTC)
	for i := range records {
		r := assets.Record{RowKey: fmt.Sprintf("asset-%03d", i), Properties: []assets.Property{
			{Name: "Bin", Type: assets.TypeBinary, Value: []byte{0, 1, 2, byte(i), 0xff}},
			{Name: "Flag", Type: assets.TypeBoolean, Value: i%2 == 0},
			{Name: "Id", Type: assets.TypeGUID, Value: fmt.Sprintf("0b9a0d7e-6c1e-4d77-9a57-1b2c3d4e%04x", i)},
			{Name: "Name", Type: assets.TypeString, Value: fmt.Sprintf("pump %d ünïcode", i)},
			{Name: "Ratio", Type: assets.TypeDouble, Value: 0.1 * float64(i)},
			{Name: "Size", Type: assets.TypeInt64, Value: int64(1)<<40 + int64(i)},
			{Name: "Small", Type: assets.TypeInt32, Value: int32(-i)},
			{Name: "Updated", Type: assets.TypeDateTime, Value: at.Add(time.Duration(i) * time.Hour)},
			{Name: "Whole", Type: assets.TypeDouble, Value: 3.0}, // a whole Double must stay Double
		}}
		must(e.t, w.Put(ctx, r))
	}
	must(e.t, w.Flush(ctx))
	for i := range files {
		body := bytes.Repeat([]byte(fmt.Sprintf("file %d content ", i)), 40*(i+1))
		f := assets.File{
			Path: fmt.Sprintf("docs/f%02d.bin", i), Size: int64(len(body)),
			ContentType: "application/x-twin", ContentEncoding: "identity", ContentLanguage: "de-CH",
			ContentDisposition: fmt.Sprintf(`attachment; filename="f%d.bin"`, i), CacheControl: "max-age=60",
			Metadata: map[string]string{"owner": "plant-7", "serial": fmt.Sprint(i)},
		}
		must(e.t, e.store.PutFile(ctx, tenant, f, bytes.NewReader(body)))
	}
}

// disturb changes tenant so that a restore has something to undo: one more
// record and file, one record changed.
func (e *env) disturb(tenant string) {
	e.t.Helper()
	ctx := e.t.Context()
	w, err := e.store.NewRecordWriter(tenant)
	must(e.t, err)
	must(e.t, w.Put(ctx, assets.Record{RowKey: "asset-000", Properties: []assets.Property{{Name: "Name", Type: assets.TypeString, Value: "changed"}}}))
	must(e.t, w.Put(ctx, assets.Record{RowKey: "zz-extra", Properties: []assets.Property{{Name: "Name", Type: assets.TypeString, Value: "extra"}}}))
	must(e.t, w.Flush(ctx))
	must(e.t, e.store.PutFile(ctx, tenant, assets.File{Path: "docs/extra.txt", Size: 5, ContentType: "text/plain"}, strings.NewReader("extra")))
}

func wantSucceeded(t *testing.T, st restoreJSON, want progress) {
	t.Helper()
	if st.State != "succeeded" || st.Error != nil || st.StartedAt == nil || st.CompletedAt == nil {
		t.Fatalf("restore = %+v, want succeeded", st)
	}
	if st.Progress.Records != want.records || st.Progress.Files != want.files || st.Progress.Bytes != want.bytes {
		t.Fatalf("progress = %+v, want %+v", st.Progress, want)
	}
}

type progress struct{ records, files, bytes int64 }

func wantFailed(t *testing.T, st restoreJSON, code string) string {
	t.Helper()
	if st.State != "failed" || st.Error == nil || st.Error.Code != code {
		t.Fatalf("restore = %+v (error %+v), want failed with %s", st, st.Error, code)
	}
	for _, leak := range []string{"RESPONSE", "{", "innererror", "AKV"} {
		if strings.Contains(st.Error.Message, leak) {
			t.Fatalf("error message leaks %q: %s", leak, st.Error.Message)
		}
	}
	return st.Error.Message
}

// The service's end-to-end test: every dependency real (Azurite, the Key
// Vault emulator through azkeys).
func TestReplaceSameTenantKeepsEveryTypeAndPropertyAndRunsOnce(t *testing.T) {
	e := newAzureEnv(t)
	e.seed("acme", 12, 4)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	if d := e.snapshot("acme").diff(want); d == "" {
		t.Fatal("disturb changed nothing")
	}
	e.emu.ResetRequests()

	op := e.token("acme", auth.RoleBackupOperator)
	id := e.startRestore(op, "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
	if st := e.status("acme", id); st.State != "queued" || st.TargetTenant != "acme" || st.Mode != "replace" {
		t.Fatalf("queued restore = %+v", st)
	}
	if code := e.deliver(1); code != http.StatusOK {
		t.Fatalf("RestoreWorker = %d\n%s", code, e.logs)
	}
	st := e.status("acme", id)
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("after replace the tenant differs from the backup: %s", d)
	}
	if n := e.emu.CountOps(vault, "unwrapKey"); n != 1 {
		t.Fatalf("%d unwraps, want exactly 1", n)
	}
	// The unwrap used exactly the recorded key version.
	for _, r := range e.emu.Requests() {
		if r.Op == "unwrapKey" && !strings.Contains(r.Path, e.kid[strings.LastIndexByte(e.kid, '/'):]) {
			t.Fatalf("unwrap path %s does not name version of %s", r.Path, e.kid)
		}
	}

	// Redelivery of the same message: acknowledged, nothing runs again.
	e.disturb("acme")
	for _, n := range []int{2, 5} {
		if code := e.deliver(n); code != http.StatusOK {
			t.Fatalf("redelivery %d = %d", n, code)
		}
	}
	if n := e.emu.CountOps(vault, "unwrapKey"); n != 1 {
		t.Fatalf("redelivery unwrapped again: %d unwraps", n)
	}
	if again := e.status("acme", id); again.CompletedAt == nil || *again.CompletedAt != *st.CompletedAt || again.State != "succeeded" {
		t.Fatalf("redelivery changed the row: %+v vs %+v", again, st)
	}
	if d := e.snapshot("acme").diff(want); d == "" {
		t.Fatal("redelivery restored again")
	}
}

func TestMergeIntoAnotherTenantWithPlatformKey(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 8, 3)
	src := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Platform)
	e.disturb("acme-sandbox") // unrelated assets the merge must keep

	st := e.runRestore(e.token("", auth.RolePlatformOperator), "acme",
		map[string]any{"backupId": b.BackupID, "targetTenant": "acme-sandbox", "mode": "merge"})
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if st.TargetTenant != "acme-sandbox" || st.Tenant != "acme" {
		t.Fatalf("restore = %+v", st)
	}
	got := e.snapshot("acme-sandbox")
	// Merge: the backup's records and files (asset-000 overwritten), plus the extras.
	if len(got.Records) != len(src.Records)+1 || len(got.Files) != len(src.Files)+1 {
		t.Fatalf("sandbox has %d records, %d files", len(got.Records), len(got.Files))
	}
	for i := range src.Records {
		if !got.Records[i].Equal(src.Records[i]) {
			t.Fatalf("record %s differs after merge: %+v", src.Records[i].RowKey, got.Records[i])
		}
	}
	if got.Records[len(got.Records)-1].RowKey != "zz-extra" {
		t.Fatal("merge removed a record the backup lacks")
	}
	files := map[string]fileSnap{}
	for _, f := range got.Files {
		files[f.File.Path] = f
	}
	for _, f := range src.Files {
		if fmt.Sprintf("%+v", files[f.File.Path]) != fmt.Sprintf("%+v", f) {
			t.Fatalf("file %s differs: %+v vs %+v", f.File.Path, files[f.File.Path], f)
		}
	}
	if _, ok := files["docs/extra.txt"]; !ok {
		t.Fatal("merge removed a file the backup lacks")
	}
	if n := e.emu.CountOps(platVault, "unwrapKey"); n != 1 {
		t.Fatalf("%d platform unwraps, want 1", n)
	}
	if n := e.emu.CountOps(vault, "unwrapKey"); n != 0 {
		t.Fatalf("the customer key was used for a platform-key backup")
	}
}

func TestDryRunVerifiesAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 5, 2)
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	before := e.snapshot("acme")
	st := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	if !st.DryRun || st.Mode != "" {
		t.Fatalf("dry run = %+v", st)
	}
	if d := e.snapshot("acme").diff(before); d != "" {
		t.Fatalf("dry run wrote to the tenant: %s", d)
	}
	if e.target.staged != 0 || e.target.filesPut != 0 {
		t.Fatalf("dry run staged %d blocks and committed %d files", e.target.staged, e.target.filesPut)
	}
}

func TestCustomerKeyDisabledThenReenabled(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 4, 1)
	want := e.snapshot("acme")
	b := e.makeBackup("acme", keywrap.Customer)
	e.disturb("acme")
	disturbed := e.snapshot("acme")
	op := e.token("acme", auth.RoleBackupOperator)
	body := map[string]any{"backupId": b.BackupID, "mode": "replace"}

	must(t, e.emu.SetEnabled(vault, keyName, "", false))
	msg := wantFailed(t, e.runRestore(op, "acme", body), "CustomerKeyUnavailable")
	for _, s := range []string{keyName, vault, "restore access"} {
		if !strings.Contains(msg, s) {
			t.Fatalf("message %q does not say %q", msg, s)
		}
	}
	if !strings.Contains(e.logs.String(), `"code":"KeyDisabled"`) {
		t.Fatal("the underlying cause KeyDisabled is not logged")
	}
	if d := e.snapshot("acme").diff(disturbed); d != "" {
		t.Fatalf("failed restore wrote: %s", d)
	}
	// Also as a dry run: key outcomes show in the status.
	wantFailed(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), "CustomerKeyUnavailable")

	must(t, e.emu.SetEnabled(vault, keyName, "", true))
	wantSucceeded(t, e.runRestore(op, "acme", body), progress{b.Records, b.Files, b.Bytes})
	if d := e.snapshot("acme").diff(want); d != "" {
		t.Fatalf("after re-enabling: %s", d)
	}
}

func TestCustomerKeyUnavailable(t *testing.T) {
	cases := map[string]func(e *env){
		"grant revoked": func(e *env) { must(e.t, e.emu.Revoke(vault, customerToken())) },
		"key deleted":   func(e *env) { must(e.t, e.emu.DeleteKey(vault, keyName)) },
		// Taking the tenant off the key's ownership tag works like
		// disabling the key (API.md §5).
		"tenant untagged": func(e *env) {
			must(e.t, e.emu.SetTags(vault, keyName, "", map[string]string{keywrap.DefaultOwnershipTag: "acme-sandbox"}))
		},
		"byok turned off": func(e *env) {
			e.keys.mu.Lock()
			e.keys.enabled = false
			e.keys.mu.Unlock()
		},
	}
	for name, breakKey := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.seed("acme", 2, 1)
			b := e.makeBackup("acme", keywrap.Customer)
			e.disturb("acme")
			before := e.snapshot("acme")
			breakKey(e)
			st := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "mode": "replace"})
			msg := wantFailed(t, st, "CustomerKeyUnavailable")
			if !strings.Contains(msg, vault) || !strings.Contains(msg, appID) {
				t.Fatalf("message %q does not name the vault and the application", msg)
			}
			if d := e.snapshot("acme").diff(before); d != "" {
				t.Fatalf("failed restore wrote: %s", d)
			}
		})
	}
}

// TestRotatedKeyRestoresWithRecordedVersion: after the customer rotates
// the key, an older backup still unwraps with exactly the version that
// wrapped it.
func TestRotatedKeyRestoresWithRecordedVersion(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 3, 1)
	b := e.makeBackup("acme", keywrap.Customer)
	newKid, err := e.emu.RotateKey(vault, keyName)
	must(t, err)
	if newKid == b.KeyID {
		t.Fatal("rotation kept the version")
	}
	e.emu.ResetRequests()
	st := e.runRestore(e.token("acme", auth.RoleBackupOperator), "acme", map[string]any{"backupId": b.BackupID, "dryRun": true})
	wantSucceeded(t, st, progress{b.Records, b.Files, b.Bytes})
	oldVersion := b.KeyID[strings.LastIndexByte(b.KeyID, '/'):]
	n := 0
	for _, r := range e.emu.Requests() {
		if r.Op == "unwrapKey" {
			n++
			if !strings.HasSuffix(strings.TrimSuffix(r.Path, "/unwrapkey"), oldVersion) && !strings.Contains(r.Path, oldVersion+"/") {
				t.Fatalf("unwrap %s does not use the recorded version %s", r.Path, oldVersion)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d unwraps", n)
	}
}

// TestTargetBusyIsRetriedThenFails: while a backup holds the target
// tenant's lease the restore is retried without starting; on the last
// delivery it fails with Conflict. Once the lease is free, restores run.
func TestTargetBusyIsRetriedThenFails(t *testing.T) {
	e := newEnv(t)
	e.seed("acme", 2, 1)
	b := e.makeBackup("acme", keywrap.Platform)
	l, err := e.leases.Acquire(t.Context(), "acme", "backup-of-acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	op := e.token("acme", auth.RoleBackupOperator)
	id := e.startRestore(op, "acme", map[string]any{"backupId": b.BackupID, "mode": "merge"})
	if code := e.deliver(1); code != http.StatusInternalServerError {
		t.Fatalf("delivery while the target is busy = %d, want 500 (retry)", code)
	}
	if st := e.status("acme", id); st.State != "queued" {
		t.Fatalf("busy target changed the row: %+v", st)
	}
	if code := e.deliver(5); code != http.StatusOK {
		t.Fatalf("last delivery = %d", code)
	}
	msg := wantFailed(t, e.status("acme", id), "Conflict")
	if !strings.Contains(msg, "acme") {
		t.Fatalf("message %q does not name the tenant", msg)
	}
	if err := e.leases.Release(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	wantSucceeded(t, e.runRestore(op, "acme", map[string]any{"backupId": b.BackupID, "dryRun": true}), progress{b.Records, b.Files, b.Bytes})
}
