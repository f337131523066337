package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/assets"
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
// verify. Everything goes through the public API of the running app; only the
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
	s.demoResult, s.demoErr = res, err
	printDemo(res, err)
	s.printPageLink(os.Stdout, demoTenant)
	return nil
}

func (s *stack) runDemo(ctx context.Context) (*demoResult, error) {
	res := &demoResult{}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
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
	if res.Seeded, err = seed.Tenant(ctx, store, demoTenant, seed.Options{Records: 300, Files: 24, FileSize: 3 << 20, Seed: 7}); err != nil {
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
	// refused with KeyOwnershipNotProven (contract §5).
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
	if res.CustomerBackup, err = s.backup(ctx, admin); err != nil {
		return res, err
	}
	// 5. The customer disables the key: the next backup falls back.
	if err := s.kv.SetEnabled(demoVault, demoKey, "", false); err != nil {
		return res, err
	}
	if res.FallbackBackup, err = s.backup(ctx, admin); err != nil {
		return res, err
	}
	// 6. Restores into the sandbox: the customer-key backup is refused while
	// the key is disabled; the fallback (platform key) backup restores.
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
	return res, checkDemo(res)
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
	if len(bad) > 0 {
		return fmt.Errorf("unexpected outcomes: %s", strings.Join(bad, "; "))
	}
	return nil
}

func (s *stack) backup(ctx context.Context, token string) (backupView, error) {
	var b backupView
	code, body, err := s.call(ctx, http.MethodPost, "/api/tenants/demo/backups", token, "", &b)
	if err != nil || code != http.StatusAccepted {
		return b, fmt.Errorf("start backup: %d %s %v", code, body, err)
	}
	id := b.BackupID
	for {
		code, body, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/backups/"+id, token, "", &b)
		if err != nil || code != http.StatusOK {
			return b, fmt.Errorf("backup status: %d %s %v", code, body, err)
		}
		if b.Status == "completed" || b.Status == "failed" {
			return b, nil
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
	for {
		code, out, err := s.call(ctx, http.MethodGet, "/api/tenants/demo/restores/"+id, token, "", &r)
		if err != nil || code != http.StatusOK {
			return r, fmt.Errorf("restore status: %d %s %v", code, out, err)
		}
		if r.State == "succeeded" || r.State == "failed" {
			return r, nil
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

func (s *stack) assetStore() (*assets.Store, error) {
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
	return assets.New(tables.NewClient(name("TABLE_ASSETS", "Assets")),
		blobs.ServiceClient().NewContainerClient(name("CONTAINER_ASSETS", "assets")), nil), nil
}

// clearTenant removes a tenant's assets, so each demo run starts the same.
func clearTenant(ctx context.Context, store *assets.Store, tenant string) error {
	for _, mk := range []func(string) (*assets.Pruner, error){store.NewRecordPruner, store.NewFilePruner} {
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

func countTenant(ctx context.Context, store *assets.Store, tenant string) (assets.Counts, error) {
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

// printDemo prints the summary a person reads after `bash scripts/run.sh`.
func printDemo(r *demoResult, err error) {
	if r == nil {
		r = &demoResult{}
	}
	line := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
		}
		fmt.Printf("  [%s] %s\n", mark, fmt.Sprintf(format, args...))
	}
	reason := func(c *codeView) string {
		if c == nil {
			return "-"
		}
		return c.Code + ": " + c.Message
	}
	fmt.Printf("\nDemo: tenant %q, customer key %s/%s, restores into %q\n", demoTenant, demoVault, demoKey, sandboxTenant)
	line(r.Seeded.Records > 0, "seeded %d records and %d files (%d bytes)", r.Seeded.Records, r.Seeded.Files, r.Seeded.Bytes)
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
	line(r.CustomerRestore.State == "succeeded", "key re-enabled; restore of the customer-key backup: %s (%d records, %d files, %d bytes)",
		r.CustomerRestore.State, r.CustomerRestore.Progress.Records, r.CustomerRestore.Progress.Files, r.CustomerRestore.Progress.Bytes)
	line(r.Verify.State == "succeeded", "verification (dry run) of the customer-key backup: %s", r.Verify.State)
	line(r.SandboxCounts == r.Seeded, "sandbox tenant now holds %d records and %d files", r.SandboxCounts.Records, r.SandboxCounts.Files)
	if err != nil {
		fmt.Printf("\nDEMO FAILED: %v\n(the stack keeps running so you can look around)\n", err)
	} else {
		fmt.Println("\nDemo finished: every outcome is as expected.")
	}
}
