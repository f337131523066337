package backup_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/tenants"
)

// A BYOK tenant's backup is wrapped once with the customer key, and its
// content is the tenant's assets exactly. The service's end-to-end test:
// every dependency real (Azurite, the Key Vault emulator through azkeys).
func TestCustomerKeyBackup(t *testing.T) {
	e := newAzureEnv(t)
	e.seed(testTenant, 40, 7)
	e.enableBYOK(testTenant, true)
	job := e.request(testTenant)

	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	if b.KeySource != keywrap.Customer || b.FallbackReason != nil || b.Error != nil {
		t.Fatalf("row = %+v", b)
	}
	if !strings.HasPrefix(b.KeyID, e.emu.VaultURL(custVault)+"keys/k/") || len(b.KeyID) <= len(e.emu.VaultURL(custVault)+"keys/k/") {
		t.Fatalf("keyId %q is not the versioned customer key", b.KeyID)
	}
	if b.Chunks < 4 {
		t.Fatalf("only %d chunks: the test data should span several", b.Chunks)
	}
	if n := e.emu.CountOps(custVault, "wrapKey"); n != 1 {
		t.Errorf("customer vault saw %d wrapKey calls, want exactly 1", n)
	}
	if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
		t.Errorf("platform vault saw %d wrapKey calls, want 0", n)
	}
	got := e.verifyBackup(b)
	e.checkMatchesSource(testTenant, got)
	if st, _ := e.byok.Status(t.Context(), testTenant); st.State != byok.Active {
		t.Errorf("byok state = %s, want active", st.State)
	}
	rows := e.wrapRows(testTenant)
	if len(rows) != 1 || rows[0].Operation != audit.Wrap || rows[0].Outcome != audit.OutcomeOK ||
		rows[0].BackupID != job.BackupID || rows[0].KeyID != b.KeyID || rows[0].KeySource != "customer" {
		t.Errorf("audit rows = %+v", rows)
	}
	// Everything under the backup is in the committed attempt's directory.
	dir := strings.TrimSuffix(b.ManifestBlob, "manifest")
	for _, n := range e.blobNames(testTenant + "/" + job.BackupID + "/") {
		if !strings.HasPrefix(n, dir) {
			t.Errorf("blob %s outside the committed attempt %s", n, dir)
		}
	}
}

// Without BYOK the platform key wraps, without a fallback reason.
func TestPlatformKeyBackupWithoutBYOK(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 5, 2)
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	if b.KeySource != keywrap.Platform || b.FallbackReason != nil || !strings.HasPrefix(b.KeyID, e.emu.VaultURL(platVault)+"keys/platform/") {
		t.Fatalf("row = %+v", b)
	}
	if n := e.emu.CountOps(platVault, "wrapKey"); n != 1 {
		t.Errorf("platform wrapKey calls = %d, want 1", n)
	}
	e.checkMatchesSource(testTenant, e.verifyBackup(b))
}

// An empty tenant still makes a complete, verifiable backup.
func TestEmptyTenantBackup(t *testing.T) {
	e := newEnv(t)
	job := e.request("empty-tenant")
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row("empty-tenant", job.BackupID)
	got := e.verifyBackup(b)
	if b.Records != 0 || b.Files != 0 || b.Chunks != 2 || len(got.records) != 0 {
		t.Fatalf("row = %+v", b)
	}
}

// When the customer key is refused (API.md §5's definitive causes; the
// transient ones are in transient_test.go), the backup is made with the
// platform key and says why; the tenant's BYOK state turns degraded,
// the failed use is audited and a warning logged.
func TestFallbackBackups(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(e *env)
		code   errcode.Code
	}{
		{"disabled-key", func(e *env) { must(e.t, e.emu.SetEnabled(custVault, "k", "", false)) }, errcode.KeyDisabled},
		{"revoked-grant", func(e *env) { must(e.t, e.emu.Revoke(custVault, kvemu.CustomerToken(appID, entraA))) }, errcode.KeyAccessDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.seed(testTenant, 8, 2)
			e.enableBYOK(testTenant, true)
			c.break_(e)
			job := e.request(testTenant)
			if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
				t.Fatalf("worker = %d %s", rec.Code, rec.Body)
			}
			b := e.row(testTenant, job.BackupID)
			if b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Platform || b.FallbackReason == nil {
				t.Fatalf("row = %+v", b)
			}
			if b.FallbackReason.Code != c.code || b.FallbackReason.Message == "" || strings.Contains(b.FallbackReason.Message, "RESPONSE") {
				t.Errorf("fallbackReason = %+v, want code %s", b.FallbackReason, c.code)
			}
			if n := e.emu.CountOps(custVault, "wrapKey"); n != 0 {
				t.Errorf("customer vault wrapKey calls = %d, want 0 (refused before wrapping)", n)
			}
			if n := e.emu.CountOps(platVault, "wrapKey"); n != 1 {
				t.Errorf("platform wrapKey calls = %d, want 1", n)
			}
			e.checkMatchesSource(testTenant, e.verifyBackup(b))
			st, err := e.byok.Status(t.Context(), testTenant)
			must(t, err)
			if st.State != byok.Degraded || st.LastCheck == nil || st.LastCheck.Code != string(c.code) {
				t.Errorf("byok status = %+v, want degraded with %s", st, c.code)
			}
			rows := e.wrapRows(testTenant)
			if len(rows) != 2 || rows[0].KeySource != "customer" || rows[0].Outcome != string(c.code) ||
				rows[1].KeySource != "platform" || rows[1].Outcome != audit.OutcomeOK || rows[1].BackupID != job.BackupID {
				t.Errorf("audit rows = %+v", rows)
			}
			if w := e.logs.Records("customer key unusable: the backup uses the platform key"); len(w) != 1 || w[0]["level"] != "WARN" || w[0]["code"] != string(c.code) {
				t.Errorf("fallback warning = %v", w)
			}
		})
	}
}

// With fallbackToPlatformKey false an unusable customer key fails the
// backup with CustomerKeyUnavailable at once (not retried), and nothing is
// left in the backups container.
func TestStrictRefusal(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 4, 1)
	e.enableBYOK(testTenant, false)
	must(t, e.emu.SetEnabled(custVault, "k", "", false))
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s (a refusal is final: the message must be acknowledged)", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	if b.Status != catalog.StatusFailed || b.Error == nil || b.Error.Code != errcode.CustomerKeyUnavailable {
		t.Fatalf("row = %+v", b)
	}
	for _, want := range []string{"cust-kv/k", "KeyDisabled", "fallback"} {
		if !strings.Contains(b.Error.Message, want) {
			t.Errorf("message %q does not mention %q", b.Error.Message, want)
		}
	}
	if b.KeySource != "" || b.Chunks != 0 {
		t.Errorf("failed row has results: %+v", b)
	}
	if n := e.emu.CountOps(platVault, "wrapKey"); n != 0 {
		t.Errorf("platform key used %d times despite the refusal", n)
	}
	if names := e.blobNames(testTenant + "/"); len(names) != 0 {
		t.Errorf("blobs left: %v", names)
	}
	if st, _ := e.byok.Status(t.Context(), testTenant); st.State != byok.Degraded {
		t.Errorf("byok state = %s, want degraded", st.State)
	}
}

// Nothing under backups/<tenant>/ reveals an asset id, property name or
// value, file path or content: not the blob bytes, not the blob names, not
// the blob metadata.
func TestNoCleartextUnderBackups(t *testing.T) {
	// On Azurite: the blob metadata it checks is the Azure container's.
	e := newAzureEnv(t)
	ctx := t.Context()
	e.seed(testTenant, 20, 4)
	w, err := e.assets.NewRecordWriter(testTenant)
	must(t, err)
	must(t, w.Put(ctx, assets.Record{RowKey: "pump-station-0042-rowkey", Properties: []assets.Property{
		{Name: "FirmwareBlobZulu", Type: assets.TypeBinary, Value: []byte("FIRMWARE-MAGIC-BYTES-7781")},
		{Name: "SerialNumberZebra", Type: assets.TypeString, Value: "SN-ZEBRA-99817-ALPHA"},
	}}))
	must(t, w.Flush(ctx))
	content := bytes.Repeat([]byte("CONFIDENTIAL-BLUEPRINT-CONTENT "), 3000)
	must(t, e.assets.PutFile(ctx, testTenant, assets.File{Path: "plans/secret-floor-plan-level3.dwg", Size: int64(len(content)),
		ContentType: "application/x-dwg-secret", Metadata: map[string]string{"ownername": "Dr-Hypatia-Quux"}}, bytes.NewReader(content)))

	needles := []string{"pump-station-0042-rowkey", "SerialNumberZebra", "SN-ZEBRA-99817-ALPHA", "FirmwareBlobZulu",
		"FIRMWARE-MAGIC-BYTES-7781", "secret-floor-plan-level3", "CONFIDENTIAL-BLUEPRINT", "application/x-dwg-secret", "Dr-Hypatia-Quux"}
	// And every long enough id, name, value, path and content sample of
	// the seeded data.
	for rec, err := range e.assets.Records(ctx, testTenant) {
		must(t, err)
		needles = append(needles, rec.RowKey)
		for _, p := range rec.Properties {
			if len(p.Name) >= 10 {
				needles = append(needles, p.Name)
			}
			if s, ok := p.Value.(string); ok && len(s) >= 10 {
				needles = append(needles, s)
			}
		}
	}
	for f, err := range e.assets.Files(ctx, testTenant) {
		must(t, err)
		needles = append(needles, f.Path)
		rc, err := e.assets.OpenFile(ctx, testTenant, f)
		must(t, err)
		buf := make([]byte, 64)
		n, _ := rc.Read(buf)
		rc.Close()
		if n >= 16 {
			needles = append(needles, string(buf[:16]))
		}
	}

	e.enableBYOK(testTenant, true)
	job := e.request(testTenant)
	if rec := e.deliver(ctx, e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	b := e.row(testTenant, job.BackupID)
	got := e.verifyBackup(b)
	if !bytes.Equal(got.files["plans/secret-floor-plan-level3.dwg"], content) {
		t.Fatal("the marked file is not in the backup")
	}

	pager := e.backups.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: new(testTenant + "/"),
		Include: container.ListBlobsInclude{Metadata: true, Tags: true}})
	blobs := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		must(t, err)
		for _, it := range page.Segment.BlobItems {
			blobs++
			raw, err := e.blobs.GetBlob(ctx, *it.Name)
			must(t, err)
			var meta strings.Builder
			for k, v := range it.Metadata {
				meta.WriteString(k + "=" + *v + ";")
			}
			if it.Properties.ContentType != nil {
				meta.WriteString(*it.Properties.ContentType)
			}
			for _, n := range needles {
				if bytes.Contains(raw, []byte(n)) || strings.Contains(*it.Name, n) || strings.Contains(meta.String(), n) {
					t.Errorf("blob %s reveals %q", *it.Name, n)
				}
			}
		}
	}
	if blobs < 5 || len(needles) < 40 {
		t.Fatalf("scanned %d blobs for %d needles: too little to mean anything", blobs, len(needles))
	}
}

// A redelivered job of a completed backup does nothing: no second wrap,
// no new blobs, the row unchanged.
func TestRedeliveryAfterCompletion(t *testing.T) {
	e := newEnv(t)
	e.seed(testTenant, 6, 2)
	e.enableBYOK(testTenant, true)
	job := e.request(testTenant)
	if rec := e.deliver(t.Context(), e.handler, job, 1); rec.Code != 200 {
		t.Fatalf("worker = %d %s", rec.Code, rec.Body)
	}
	before := e.row(testTenant, job.BackupID)
	names := e.blobNames(testTenant + "/")
	for dq := 1; dq <= 3; dq++ {
		if rec := e.deliver(t.Context(), e.handler, job, dq); rec.Code != 200 {
			t.Fatalf("redelivery %d = %d %s", dq, rec.Code, rec.Body)
		}
	}
	after := e.row(testTenant, job.BackupID)
	if after.ETag != before.ETag || after.Attempts != 1 || after.Attempt != before.Attempt {
		t.Errorf("row changed by redelivery: %+v -> %+v", before, after)
	}
	if n := e.emu.CountOps(custVault, "wrapKey"); n != 1 {
		t.Errorf("wrapKey calls = %d, want exactly 1", n)
	}
	if got := e.blobNames(testTenant + "/"); strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("blobs changed: %v -> %v", names, got)
	}
	page, err := e.cat.ListBackups(t.Context(), testTenant, catalog.ListOptions{})
	must(t, err)
	if len(page.Backups) != 1 {
		t.Errorf("%d backups listed, want 1", len(page.Backups))
	}
	e.verifyBackup(after)
}

// A malformed message is acknowledged (redelivery can't fix it) and logged;
// a job whose row does not exist is dropped the same way.
func TestMalformedAndOrphanJobs(t *testing.T) {
	e := newEnv(t)
	// A message that is not a job fails its invocation, so the host retries
	// it into backup-jobs-poison where an operator sees it: never dropped.
	if rec := e.deliverText(t.Context(), e.handler, []byte(`{"tenant":"acme","backupId":"no/pe"}`), 1); rec.Code/100 == 2 {
		t.Errorf("malformed = %d, want a failed invocation", rec.Code)
	}
	if len(e.logs.Records("backup job message is malformed; it will end in the poison queue")) != 1 {
		t.Error("malformed message not logged")
	}
	// A well-formed job enqueued by another program (no catalog row, an id
	// minted elsewhere) for a tenant in Tenants is adopted: a row is created
	// and the backup runs, once, however often the message is delivered.
	must(t, e.dir.Put(t.Context(), tenants.Tenant{ID: testTenant, BackupEnabled: true}))
	job := jobqueue.BackupJob{Tenant: testTenant, BackupID: "ops-script-0001", Reason: catalog.ReasonManual, RequestedAt: time.Now().UTC()}
	for i := 1; i <= 2; i++ {
		if rec := e.deliver(t.Context(), e.handler, job, i); rec.Code != 200 {
			t.Fatalf("delivery %d of a row-less job = %d", i, rec.Code)
		}
	}
	if row := e.row(testTenant, job.BackupID); row.Status != catalog.StatusCompleted || row.Reason != job.Reason {
		t.Errorf("adopted job row = %+v", row)
	}
	if len(e.logs.Records("backup job without a catalog row: row created from the message")) != 1 {
		t.Error("adoption not logged exactly once")
	}
}

var _ = context.Background
