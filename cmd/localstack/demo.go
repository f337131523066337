package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/assets"
	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

// The demo's customer: tenant "demo" with its own vault in its own Entra
// tenant, and a sandbox tenant restores go to.
const (
	demoTenant    = "demo"
	sandboxTenant = "demo-sandbox"
	demoVault     = "contoso-kv"
	demoKey       = "twinit-backup"
	demoEntra     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

// demoResult is what the demo did, step by step, for the summary and tests.
type demoResult struct {
	Seeded          assets.Counts
	Ownership       *ownershipView // the tag the customer must set (nil: check off)
	UntaggedRefusal *codeView      // PUT before the key is tagged
	ByokState       string
	CustomerBackup  backupView
	FallbackBackup  backupView
	RefusedRestore  restoreView // customer-key backup while the key is disabled
	PlatformRestore restoreView // fallback backup
	CustomerRestore restoreView // customer-key backup after re-enabling
	Verify          restoreView // dry run of the customer-key backup
	SandboxCounts   assets.Counts

	// Re-wrap (API.md §7): the fallback backup moved to the customer key
	// (includePlatformBackups), then refused while the key is disabled.
	RewrapPlatform    rewrapView
	FallbackRewrapped backupView // the fallback backup after that re-wrap
	RefusedRewrapped  restoreView
	// Rotation: the customer's new key version, and both backups after a
	// re-wrap to it.
	RotatedKeyID   string
	RewrapRotation rewrapView
	AfterRotation  []backupView // customer backup, fallback backup

	// Retention (API.md §6): keepLast=1 soft-deletes the customer backup;
	// undelete brings it back; deleted again, it is purged once the demo's
	// soft-delete window (DEV_SOFT_DELETE_WINDOW) has passed.
	SoftDeleted backupView
	Undeleted   backupView
	Purged      backupView
	BlobsBefore int // the backup's blobs before the purge
	BlobsLeft   int // and after it
}

type rewrapView struct {
	RewrapID string `json:"rewrapId"`
	State    string `json:"state"`
	Progress struct {
		Total   int `json:"total"`
		Done    int `json:"done"`
		Skipped int `json:"skipped"`
		Failed  int `json:"failed"`
	} `json:"progress"`
	Error *codeView `json:"error"`
}

type backupView struct {
	BackupID       string    `json:"backupId"`
	Status         string    `json:"status"`
	KeySource      string    `json:"keySource"`
	KeyID          string    `json:"keyId"`
	FallbackReason *codeView `json:"fallbackReason"`
	Records        int64     `json:"records"`
	Files          int64     `json:"files"`
	Bytes          int64     `json:"bytes"`
	Chunks         int64     `json:"chunks"`
	Error          *codeView `json:"error"`
	PreviousKeyIDs []string  `json:"previousKeyIds"`
	DeletedBy      string    `json:"deletedBy"`
	DeletedAt      time.Time `json:"deletedAt"`
	PurgeAfter     time.Time `json:"purgeAfter"`
	Progress       struct {
		countView
		TotalBytes *int64 `json:"totalBytes"`
	} `json:"progress"`
}

type restoreView struct {
	RestoreID string    `json:"restoreId"`
	State     string    `json:"state"`
	Progress  countView `json:"progress"`
	Error     *codeView `json:"error"`
}

type ownershipView struct {
	TagName  string `json:"tagName"`
	TagValue string `json:"tagValue"`
}

type codeView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type countView struct {
	Records int64 `json:"records"`
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"`
}

// demo walks through the product as a customer and support would: seed
// assets, enable BYOK, back up, lose the key (fallback backup), restore both
// backups into a sandbox (the customer-key one refused until the key is back),
// verify; then re-wrap the fallback backup with the customer's key, rotate
// the key and re-wrap to the new version, and apply retention: soft delete,
// undelete, purge. Everything goes through the public API of the running app; only the
// customer's own actions on their vault (create, disable, enable the key) use
// the emulator directly.
//
// A failed demo does not stop the stack: the summary says what failed and
// the stack stays up so the developer can look around (demoErr keeps it for
// tests).
func (s *stack) demo(ctx context.Context) error {
	if s.cfg.NoDemo {
		return nil
	}
	res, err := s.runDemo(ctx)
	if res == nil {
		res = &demoResult{}
	}
	// up prints the summary after the step's line.
	s.demoResult, s.demoErr = res, err
	return nil
}

func (s *stack) runDemo(ctx context.Context) (*demoResult, error) {
	res := &demoResult{}
	// Long enough for a large -demo-files.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()

	// 1. Assets for the demo tenant (fresh each run), and an empty sandbox.
	store, err := s.assetStore()
	if err != nil {
		return res, err
	}
	if err := store.Ensure(ctx); err != nil {
		return res, err
	}
	for _, t := range []string{demoTenant, sandboxTenant} {
		if err := clearTenant(ctx, store, t); err != nil {
			return res, fmt.Errorf("clear %s: %w", t, err)
		}
	}
	files := s.cfg.DemoFiles
	if files <= 0 {
		files = 24
	}
	s.out().printf("         seeding tenant %q: 300 records, %d files of up to 3 MiB\n", demoTenant, files)
	stop := s.tick("         still seeding")
	res.Seeded, err = seed.Tenant(ctx, store, demoTenant, seed.Options{Records: 300, Files: files, FileSize: 3 << 20, Seed: 7})
	stop()
	if err != nil {
		return res, fmt.Errorf("seed assets: %w", err)
	}

	// 2. The customer's vault and key, and their grant to our application.
	if err := s.kv.CreateVault(demoVault, demoEntra, kvemu.AccessPolicy); err != nil {
		return res, err
	}
	if _, err := s.kv.CreateKey(demoVault, demoKey, "RSA", 3072, nil); err != nil {
		return res, fmt.Errorf("create customer key: %w", err)
	}
	if err := s.kv.Grant(demoVault, kvemu.CustomerToken(byokAppID, demoEntra), "get", "wrapKey", "unwrapKey"); err != nil {
		return res, err
	}

	admin, err := s.issuer.Token(demoTenant, "byok.admin", "backup.operator")
	if err != nil {
		return res, err
	}
	// Support restores into another tenant: rights on both tenants.
	support, err := s.issuer.Token(demoTenant, "platform.operator")
	if err != nil {
		return res, err
	}

	// 3. Enable BYOK from "Settings › BYOK Encryption". The page shows the
	// ownership tag to set; until the customer tags the key, enabling is
	// refused with KeyOwnershipNotProven (API.md §5).
	var status struct {
		State     string         `json:"state"`
		Ownership *ownershipView `json:"ownership"`
	}
	if code, body, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/byok", admin, "", &status); err != nil || code != http.StatusOK {
		return res, fmt.Errorf("read BYOK status: %d %s %v", code, body, err)
	}
	res.Ownership = status.Ownership
	put := fmt.Sprintf(`{"keyVaultName":%q,"keyName":%q,"tenantId":%q,"fallbackToPlatformKey":true}`, demoVault, demoKey, demoEntra)
	if o := res.Ownership; o != nil {
		var refused struct {
			Error *codeView `json:"error"`
		}
		code, body, err := s.call(ctx, http.MethodPut, "/api/tenants/demo/byok", admin, put, nil)
		if err != nil || code != http.StatusUnprocessableEntity || json.Unmarshal([]byte(body), &refused) != nil {
			return res, fmt.Errorf("enable BYOK with an untagged key: %d %s %v", code, body, err)
		}
		res.UntaggedRefusal = refused.Error
		// The customer tags the key in their vault (Azure portal: Keys ›
		// the key › the current version › Tags; or az keyvault key set-attributes --tags).
		if err := s.kv.SetTags(demoVault, demoKey, "", map[string]string{o.TagName: o.TagValue}); err != nil {
			return res, fmt.Errorf("tag the customer key: %w", err)
		}
	}
	if code, body, err := s.call(ctx, http.MethodPut, "/api/tenants/demo/byok", admin, put, &status); err != nil || code != http.StatusOK {
		return res, fmt.Errorf("enable BYOK: %d %s %v", code, body, err)
	}
	res.ByokState = status.State

	// 4. A backup with the customer's key.
	s.out().printf("         BYOK enabled; backing up with the customer's key\n")
	if res.CustomerBackup, err = s.backup(ctx, admin); err != nil {
		return res, err
	}
	// 5. The customer disables the key: the next backup falls back.
	if err := s.kv.SetEnabled(demoVault, demoKey, "", false); err != nil {
		return res, err
	}
	s.out().printf("         customer key disabled; backing up again (falls back to the platform key)\n")
	if res.FallbackBackup, err = s.backup(ctx, admin); err != nil {
		return res, err
	}
	// 6. Restores into the sandbox: the customer-key backup is refused while
	// the key is disabled; the fallback (platform key) backup restores.
	s.out().printf("         restoring into %q and verifying\n", sandboxTenant)
	if res.RefusedRestore, err = s.restore(ctx, support, res.CustomerBackup.BackupID, false); err != nil {
		return res, err
	}
	if res.PlatformRestore, err = s.restore(ctx, support, res.FallbackBackup.BackupID, false); err != nil {
		return res, err
	}
	// 7. The customer re-enables the key: the customer-key backup restores,
	// and verifies.
	if err := s.kv.SetEnabled(demoVault, demoKey, "", true); err != nil {
		return res, err
	}
	if res.CustomerRestore, err = s.restore(ctx, support, res.CustomerBackup.BackupID, false); err != nil {
		return res, err
	}
	if res.Verify, err = s.restore(ctx, support, res.CustomerBackup.BackupID, true); err != nil {
		return res, err
	}
	if res.SandboxCounts, err = countTenant(ctx, store, sandboxTenant); err != nil {
		return res, err
	}
	if err := s.demoRewrap(ctx, res, admin, support, put); err != nil {
		return res, err
	}
	if err := s.demoRetention(ctx, res, admin); err != nil {
		return res, err
	}
	return res, checkDemo(res)
}

// demoRewrap: the customer moves the fallback backup to their key (it then
// restores only with it), rotates the key and moves every backup to the
// new version (API.md §7).
func (s *stack) demoRewrap(ctx context.Context, res *demoResult, admin, support, put string) error {
	// A re-wrap to the customer key needs BYOK active; the fallback left it
	// degraded until the key is checked again: the customer saves the
	// settings once more, which validates the key.
	var status struct {
		State string `json:"state"`
	}
	if code, body, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/byok", admin, "", &status); err != nil || code != http.StatusOK {
		return fmt.Errorf("read BYOK status: %d %s %v", code, body, err)
	}
	if status.State != "active" {
		if code, body, err := s.call(ctx, http.MethodPut, "/api/tenants/demo/byok", admin, put, &status); err != nil || code != http.StatusOK {
			return fmt.Errorf("validate the re-enabled key: %d %s %v", code, body, err)
		}
	}
	s.out().printf("         re-wrapping the fallback backup with the customer's key\n")
	var err error
	if res.RewrapPlatform, err = s.rewrap(ctx, admin, `{"to":"customer","includePlatformBackups":true}`); err != nil {
		return err
	}
	if res.FallbackRewrapped, err = s.getBackup(ctx, admin, res.FallbackBackup.BackupID); err != nil {
		return err
	}
	// Now it is a customer-key backup like any other: refused while the
	// key is disabled.
	if err := s.kv.SetEnabled(demoVault, demoKey, "", false); err != nil {
		return err
	}
	if res.RefusedRewrapped, err = s.restore(ctx, support, res.FallbackBackup.BackupID, false); err != nil {
		return err
	}
	if err := s.kv.SetEnabled(demoVault, demoKey, "", true); err != nil {
		return err
	}
	// The customer rotates the key (a new version, tags kept); BYOK follows
	// the current version, and a re-wrap moves the older backups to it.
	if res.RotatedKeyID, err = s.kv.RotateKey(demoVault, demoKey); err != nil {
		return fmt.Errorf("rotate the customer key: %w", err)
	}
	s.out().printf("         customer key rotated; re-wrapping the backups with the new version\n")
	if res.RewrapRotation, err = s.rewrap(ctx, admin, `{"to":"customer"}`); err != nil {
		return err
	}
	for _, id := range []string{res.CustomerBackup.BackupID, res.FallbackBackup.BackupID} {
		b, err := s.getBackup(ctx, admin, id)
		if err != nil {
			return err
		}
		res.AfterRotation = append(res.AfterRotation, b)
	}
	return nil
}

// demoRetention: keepLast=1 and a BackupRetention run soft-delete the
// older backup; it is undeleted, deleted by hand and purged (API.md §6).
// The purge needs the soft-delete window to pass: the stack sets
// DEV_SOFT_DELETE_WINDOW (seconds instead of days, local stack only).
func (s *stack) demoRetention(ctx context.Context, res *demoResult, admin string) error {
	id := res.CustomerBackup.BackupID
	if code, body, err := s.call(ctx, http.MethodPut, "/api/tenants/demo/retention", admin, `{"keepLast":1}`, nil); err != nil || code != http.StatusOK {
		return fmt.Errorf("set the retention policy: %d %s %v", code, body, err)
	}
	s.out().printf("         retention keepLast=1; running BackupRetention\n")
	var err error
	if res.SoftDeleted, err = s.retentionRun(ctx, admin, id, "deleted"); err != nil {
		return err
	}
	var b backupView
	if code, body, err := s.call(ctx, http.MethodPost, "/api/tenants/demo/backups/"+id+"/undelete", admin, "", &b); err != nil || code != http.StatusOK {
		return fmt.Errorf("undelete: %d %s %v", code, body, err)
	}
	if res.Undeleted, err = s.getBackup(ctx, admin, id); err != nil {
		return err
	}
	if res.BlobsBefore, err = s.countBackupBlobs(ctx, id); err != nil {
		return err
	}
	code, body, err := s.call(ctx, http.MethodDelete, "/api/tenants/demo/backups/"+id, admin, "", &b)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("delete: %d %s %v", code, body, err)
	}
	wait := time.Until(b.PurgeAfter) + 500*time.Millisecond
	s.out().printf("         backup deleted again; purging it once its soft-delete window ends (%s)\n", wait.Round(time.Second))
	if err := sleep(ctx, wait); err != nil {
		return err
	}
	if res.Purged, err = s.retentionRun(ctx, admin, id, "purged"); err != nil {
		return err
	}
	res.BlobsLeft, err = s.countBackupBlobs(ctx, id)
	return err
}

// retentionRun fires the BackupRetention timer through the runner's admin
// endpoint, as `curl -X POST …/admin/functions/BackupRetention` does, and
// waits until backup id has the status want.
func (s *stack) retentionRun(ctx context.Context, token, id, want string) (backupView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL()+"/admin/functions/BackupRetention", strings.NewReader(`{"input":""}`))
	if err != nil {
		return backupView{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return backupView{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return backupView{}, fmt.Errorf("run BackupRetention: %d", resp.StatusCode)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		b, err := s.getBackup(wctx, token, id)
		if err != nil || b.Status == want {
			return b, err
		}
		if err := sleep(wctx, 300*time.Millisecond); err != nil {
			return b, fmt.Errorf("backup %s still %s after BackupRetention, want %s: %w", id, b.Status, want, err)
		}
	}
}

func (s *stack) getBackup(ctx context.Context, token, id string) (backupView, error) {
	var b backupView
	if code, body, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/backups/"+id, token, "", &b); err != nil || code != http.StatusOK {
		return b, fmt.Errorf("backup status: %d %s %v", code, body, err)
	}
	return b, nil
}

// rewrap starts a re-wrap and waits for its end.
func (s *stack) rewrap(ctx context.Context, token, body string) (rewrapView, error) {
	var r rewrapView
	code, out, err := s.call(ctx, http.MethodPost, "/api/tenants/demo/byok/rewraps", token, body, &r)
	if err != nil || code != http.StatusAccepted {
		return r, fmt.Errorf("start re-wrap: %d %s %v", code, out, err)
	}
	id := r.RewrapID
	tell := s.progressLine("re-wrap")
	for {
		code, out, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/byok/rewraps/"+id, token, "", &r)
		if err != nil || code != http.StatusOK {
			return r, fmt.Errorf("re-wrap status: %d %s %v", code, out, err)
		}
		if r.State == "succeeded" || r.State == "failed" {
			return r, nil
		}
		p := r.Progress
		tell(r.State, fmt.Sprintf("%d of %d backups re-wrapped", p.Done, p.Total))
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return r, fmt.Errorf("re-wrap %s still %s: %w", id, r.State, err)
		}
	}
}

// countBackupBlobs counts the blobs under a demo backup's folder.
func (s *stack) countBackupBlobs(ctx context.Context, id string) (int, error) {
	blobs, err := azblob.NewClientFromConnectionString(s.az.ConnectionString(), nil)
	if err != nil {
		return 0, err
	}
	container := s.settings["CONTAINER_BACKUPS"]
	if container == "" {
		container = "backups"
	}
	prefix := demoTenant + "/" + id + "/"
	n := 0
	pager := blobs.NewListBlobsFlatPager(container, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list the backup's blobs: %w", err)
		}
		n += len(page.Segment.BlobItems)
	}
	return n, nil
}

// keyVersion is the version at the end of a versioned key id.
func keyVersion(kid string) string {
	return kid[strings.LastIndex(kid, "/")+1:]
}

// checkDemo says whether every outcome is what the product promises.
func checkDemo(r *demoResult) error {
	var bad []string
	want := func(ok bool, what string) {
		if !ok {
			bad = append(bad, what)
		}
	}
	want(r.Ownership == nil || r.UntaggedRefusal != nil && r.UntaggedRefusal.Code == "KeyOwnershipNotProven",
		"enabling BYOK with an untagged key was not refused with KeyOwnershipNotProven")
	want(r.ByokState == "active", "BYOK state after enabling is "+r.ByokState)
	want(r.CustomerBackup.Status == "completed" && r.CustomerBackup.KeySource == "customer", "first backup: "+r.CustomerBackup.Status+"/"+r.CustomerBackup.KeySource)
	want(r.FallbackBackup.Status == "completed" && r.FallbackBackup.KeySource == "platform" &&
		r.FallbackBackup.FallbackReason != nil && r.FallbackBackup.FallbackReason.Code == "KeyDisabled", "fallback backup did not fall back with KeyDisabled")
	want(r.RefusedRestore.State == "failed" && r.RefusedRestore.Error != nil && r.RefusedRestore.Error.Code == "CustomerKeyUnavailable", "restore with the key disabled was not refused with CustomerKeyUnavailable")
	want(r.PlatformRestore.State == "succeeded", "platform-key restore: "+r.PlatformRestore.State)
	want(r.CustomerRestore.State == "succeeded", "customer-key restore after re-enabling: "+r.CustomerRestore.State)
	want(r.Verify.State == "succeeded", "verification: "+r.Verify.State)
	want(r.SandboxCounts == r.Seeded, fmt.Sprintf("sandbox holds %+v, demo tenant had %+v", r.SandboxCounts, r.Seeded))
	want(r.CustomerRestore.Progress == countView(r.Seeded), fmt.Sprintf("restore progress %+v, backup had %+v", r.CustomerRestore.Progress, r.Seeded))
	want(r.RewrapPlatform.State == "succeeded", "re-wrap of the fallback backup: "+r.RewrapPlatform.State)
	want(r.FallbackRewrapped.KeySource == "customer" && keyVersion(r.FallbackRewrapped.KeyID) == keyVersion(r.CustomerBackup.KeyID) &&
		r.FallbackRewrapped.FallbackReason != nil, "fallback backup after the re-wrap: "+r.FallbackRewrapped.KeySource+" "+r.FallbackRewrapped.KeyID)
	want(rewrapRefused(r), "restore of the re-wrapped fallback backup while the key is disabled was not refused with CustomerKeyUnavailable")
	want(r.RewrapRotation.State == "succeeded", "re-wrap after the rotation: "+r.RewrapRotation.State)
	want(rotated(r), fmt.Sprintf("backups after the rotation do not name the new version %s", r.RotatedKeyID))
	want(r.SoftDeleted.Status == "deleted" && r.SoftDeleted.DeletedBy == "retention", "retention run left the older backup "+r.SoftDeleted.Status)
	want(r.Undeleted.Status == "completed", "undelete: "+r.Undeleted.Status)
	want(r.Purged.Status == "purged" && r.BlobsBefore > 0 && r.BlobsLeft == 0,
		fmt.Sprintf("purge: %s, blobs %d before, %d after", r.Purged.Status, r.BlobsBefore, r.BlobsLeft))
	if len(bad) > 0 {
		return fmt.Errorf("unexpected outcomes: %s", strings.Join(bad, "; "))
	}
	return nil
}

func rewrapRefused(r *demoResult) bool {
	e := r.RefusedRewrapped.Error
	return r.RefusedRewrapped.State == "failed" && e != nil && e.Code == "CustomerKeyUnavailable"
}

// rotated: both backups now name the rotated version, and name the older
// one among their previous keys.
func rotated(r *demoResult) bool {
	if len(r.AfterRotation) != 2 || r.RotatedKeyID == "" {
		return false
	}
	for _, b := range r.AfterRotation {
		if b.KeySource != "customer" || b.KeyID != r.RotatedKeyID || !slices.Contains(b.PreviousKeyIDs, r.CustomerBackup.KeyID) {
			return false
		}
	}
	return true
}

func (s *stack) backup(ctx context.Context, token string) (backupView, error) {
	var b backupView
	code, body, err := s.call(ctx, http.MethodPost, "/api/tenants/demo/backups", token, "", &b)
	if err != nil || code != http.StatusAccepted {
		return b, fmt.Errorf("start backup: %d %s %v", code, body, err)
	}
	id := b.BackupID
	tell := s.progressLine("backup")
	for {
		code, body, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/backups/"+id, token, "", &b)
		if err != nil || code != http.StatusOK {
			return b, fmt.Errorf("backup status: %d %s %v", code, body, err)
		}
		if b.Status == "completed" || b.Status == "failed" {
			return b, nil
		}
		if b.Status == "queued" {
			tell(b.Status, "waiting for the worker")
		} else {
			tell(b.Status, backupProgress(b))
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return b, fmt.Errorf("backup %s still %s: %w", id, b.Status, err)
		}
	}
}

func (s *stack) restore(ctx context.Context, token, backupID string, dryRun bool) (restoreView, error) {
	var r restoreView
	body := fmt.Sprintf(`{"backupId":%q,"targetTenant":%q,"mode":"replace","dryRun":%t}`, backupID, sandboxTenant, dryRun)
	code, out, err := s.call(ctx, http.MethodPost, "/api/tenants/demo/restores", token, body, &r)
	if err != nil || code != http.StatusAccepted {
		return r, fmt.Errorf("start restore: %d %s %v", code, out, err)
	}
	id := r.RestoreID
	tell := s.progressLine("restore")
	for {
		code, out, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/restores/"+id, token, "", &r)
		if err != nil || code != http.StatusOK {
			return r, fmt.Errorf("restore status: %d %s %v", code, out, err)
		}
		if r.State == "succeeded" || r.State == "failed" {
			return r, nil
		}
		switch p := r.Progress; {
		case r.State == "queued":
			tell(r.State, "waiting for the worker")
		case p == (countView{}):
			// A restore verifies the whole backup before it writes.
			tell(r.State, "verifying the backup")
		default:
			tell(r.State, fmt.Sprintf("%d records, %d files, %s so far", p.Records, p.Files, size(p.Bytes)))
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return r, fmt.Errorf("restore %s still %s: %w", id, r.State, err)
		}
	}
}

// call sends one API request and decodes a JSON answer into v.
func (s *stack) call(ctx context.Context, method, path, token, body string, v any) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.BaseURL()+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", err
	}
	if resp.StatusCode/100 == 2 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, string(b), err
		}
	}
	return resp.StatusCode, string(bytes.TrimSpace(b)), nil
}

func (s *stack) assetStore() (*assetsazure.Store, error) {
	cs := s.az.ConnectionString()
	tables, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, err
	}
	blobs, err := azblob.NewClientFromConnectionString(cs, nil)
	if err != nil {
		return nil, err
	}
	name := func(key, def string) string {
		if v := s.settings[key]; v != "" {
			return v
		}
		return def
	}
	return assetsazure.New(tables.NewClient(name("TABLE_ASSETS", "Assets")),
		blobs.ServiceClient().NewContainerClient(name("CONTAINER_ASSETS", "assets")), nil), nil
}

// clearTenant removes a tenant's assets, so each demo run starts the same.
func clearTenant(ctx context.Context, store *assetsazure.Store, tenant string) error {
	for _, mk := range []func(string) (assets.Pruner, error){store.NewRecordPruner, store.NewFilePruner} {
		p, err := mk(tenant)
		if err != nil {
			return err
		}
		if _, err := p.Finish(ctx); err != nil {
			return err
		}
	}
	return nil
}

func countTenant(ctx context.Context, store *assetsazure.Store, tenant string) (assets.Counts, error) {
	var c assets.Counts
	for _, err := range store.Records(ctx, tenant) {
		if err != nil {
			return c, err
		}
		c.Records++
	}
	for f, err := range store.Files(ctx, tenant) {
		if err != nil {
			return c, err
		}
		c.Files++
		c.Bytes += f.Size
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// progressLine returns a func a polling loop calls with every answer: it
// prints a line at most every progressEvery, and only when the progress
// changed (the service persists it with the heartbeat, every few seconds)
// or four intervals went by.
func (s *stack) progressLine(what string) func(state, progress string) {
	every := s.progressEvery()
	var last string
	var at time.Time
	start := time.Now()
	return func(state, progress string) {
		now := time.Now()
		if now.Sub(start) < every || now.Sub(at) < every || progress == last && now.Sub(at) < 4*every {
			return
		}
		last, at = progress, now
		s.out().printf("         %s %s: %s (%s)\n", what, state, progress, since(start))
	}
}

// backupProgress is a running backup's progress line: what GET
// …/backups/{id} reports (issue 14 point 6).
func backupProgress(b backupView) string {
	p := b.Progress
	read := size(p.Bytes)
	if p.TotalBytes != nil && *p.TotalBytes > 0 {
		read += fmt.Sprintf(" of %s (%d%%)", size(*p.TotalBytes), p.Bytes*100 / *p.TotalBytes)
	}
	return fmt.Sprintf("%s of files read, %d records, %d files so far", read, p.Records, p.Files)
}

// printDemo prints the summary a person reads after `bash scripts/run.sh`.
func (s *stack) printDemo(r *demoResult, err error) {
	if r == nil {
		r = &demoResult{}
	}
	out := s.out()
	line := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
		}
		out.printf("  [%s] %s\n", mark, fmt.Sprintf(format, args...))
	}
	reason := func(c *codeView) string {
		if c == nil {
			return "-"
		}
		return c.Code + ": " + c.Message
	}
	out.printf("\nDemo: tenant %q, customer key %s/%s, restores into %q\n", demoTenant, demoVault, demoKey, sandboxTenant)
	line(r.Seeded.Records > 0, "seeded %d records and %d files (%s)", r.Seeded.Records, r.Seeded.Files, size(r.Seeded.Bytes))
	if o := r.Ownership; o != nil {
		line(r.UntaggedRefusal != nil && r.UntaggedRefusal.Code == "KeyOwnershipNotProven", "enable BYOK before tagging the key: refused (%s)", reason(r.UntaggedRefusal))
		line(true, "customer tags key %s/%s: %s = %q", demoVault, demoKey, o.TagName, o.TagValue)
	} else {
		line(true, "key ownership check is off (BYOK_OWNERSHIP_TAG is empty): no tag needed")
	}
	line(r.ByokState == "active", "BYOK enabled: state %s", r.ByokState)
	cb, fb := r.CustomerBackup, r.FallbackBackup
	line(cb.KeySource == "customer", "backup %s: %s with the %s key (%s), %d chunks", cb.BackupID, cb.Status, cb.KeySource, cb.KeyID, cb.Chunks)
	line(fb.KeySource == "platform", "key disabled; backup %s: %s with the %s key; fallback reason %s", fb.BackupID, fb.Status, fb.KeySource, reason(fb.FallbackReason))
	line(r.RefusedRestore.State == "failed", "restore of the customer-key backup while the key is disabled: %s (%s)", r.RefusedRestore.State, reason(r.RefusedRestore.Error))
	line(r.PlatformRestore.State == "succeeded", "restore of the fallback backup: %s", r.PlatformRestore.State)
	line(r.CustomerRestore.State == "succeeded", "key re-enabled; restore of the customer-key backup: %s (%d records, %d files, %s)",
		r.CustomerRestore.State, r.CustomerRestore.Progress.Records, r.CustomerRestore.Progress.Files, size(r.CustomerRestore.Progress.Bytes))
	line(r.Verify.State == "succeeded", "verification (dry run) of the customer-key backup: %s", r.Verify.State)
	line(r.SandboxCounts == r.Seeded, "sandbox tenant now holds %d records and %d files", r.SandboxCounts.Records, r.SandboxCounts.Files)
	rp, fr := r.RewrapPlatform, r.FallbackRewrapped
	line(rp.State == "succeeded" && fr.KeySource == "customer", "re-wrap with includePlatformBackups: %s (%d re-wrapped, %d skipped, %d failed); fallback backup now wrapped with the %s key (%s)",
		rp.State, rp.Progress.Done, rp.Progress.Skipped, rp.Progress.Failed, fr.KeySource, fr.KeyID)
	if rp.Progress.Failed > 0 {
		// Azurite's data outlives runs, the emulator's keys do not.
		out.printf("         (failed: backups of earlier runs, whose keys lived in an earlier emulator; -fresh starts empty)\n")
	}
	line(rewrapRefused(r), "key disabled; restore of the re-wrapped fallback backup: %s (%s)", r.RefusedRewrapped.State, reason(r.RefusedRewrapped.Error))
	rr := r.RewrapRotation
	line(rr.State == "succeeded" && rotated(r), "key re-enabled and rotated to version %s; re-wrap: %s (%d re-wrapped); both backups now name the new version",
		keyVersion(r.RotatedKeyID), rr.State, rr.Progress.Done)
	line(r.SoftDeleted.Status == "deleted", "retention keepLast=1, BackupRetention run: backup %s %s by %s, purge after %s",
		r.SoftDeleted.BackupID, r.SoftDeleted.Status, r.SoftDeleted.DeletedBy, r.SoftDeleted.PurgeAfter.Format(time.RFC3339))
	line(r.Undeleted.Status == "completed", "undelete: backup %s %s", r.Undeleted.BackupID, r.Undeleted.Status)
	line(r.Purged.Status == "purged" && r.BlobsLeft == 0 && r.BlobsBefore > 0, "deleted again and past its soft-delete window, BackupRetention run: %s; blobs %d before, %d left",
		r.Purged.Status, r.BlobsBefore, r.BlobsLeft)
	if err != nil {
		out.printf("\nDEMO FAILED: %v\n(the stack keeps running so you can look around; logs: %s)\n", err, s.cfg.LogFile)
	} else {
		out.printf("\nDemo finished: every outcome is as expected.\n")
	}
	if link := s.signInLink(); link != "" {
		out.printf("See it on the Settings page (signed in for 1 h):\n  %s\n", link)
	}
}
