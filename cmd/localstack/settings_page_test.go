package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/testing/openapitest"
)

// go test ./cmd/localstack -run TestSettingsPage -update-screenshots
// rewrites docs/screenshots/*.png (scripts/screenshots.sh runs it).
var updateScreenshots = flag.Bool("update-screenshots", false, "write the Settings page screenshots to docs/screenshots")

// chromiumPath is the Debian package's browser; .ci/run and scripts/test.sh
// install it when missing.
const chromiumPath = "/usr/bin/chromium"

// TestSettingsPage drives the Settings page (API.md §8) in headless
// Chromium against the local stack, as a customer and support would use it:
// a refused key and its fix, the ownership step, enabling, backups with the
// customer's key and with the fallback, a refused and then a successful
// restore, and a read-only token. Every API exchange the page makes goes
// through a recording proxy and is validated against docs/openapi.yaml.
func TestSettingsPage(t *testing.T) {
	browser := chromiumPath
	if _, err := os.Stat(browser); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Fatalf("Chromium is needed for the Settings page tests: apt-get install -y chromium (%v)", err)
		}
		browser = p
	}
	s, _ := startStack(t, true)
	ctx := context.Background()

	// The page's origin is a recording proxy in front of the runner.
	target, err := url.Parse(s.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	rec := &openapitest.Recorder{Next: httputil.NewSingleHostReverseProxy(target),
		Keep: func(p string) bool { return strings.HasPrefix(p, "/api/tenants/") || p == "/api/health" }}
	proxy := httptest.NewServer(rec)
	t.Cleanup(proxy.Close)

	// The customer's assets, vault and keys: a key without wrapKey and
	// unwrapKey (tagged, so the check reaches keyOperations), and the good
	// key, not yet tagged.
	store, err := s.assetStore()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	seeded, err := seed.Tenant(ctx, store, demoTenant, seed.Options{Records: 60, Files: 8, FileSize: 1 << 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	kv := s.kv
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(kv.CreateVault(demoVault, demoEntra, kvemu.AccessPolicy))
	_, err = kv.CreateKey(demoVault, "no-wrap-key", "RSA", 3072, []string{"encrypt", "decrypt"})
	must(err)
	must(kv.SetTags(demoVault, "no-wrap-key", "", map[string]string{"twinit-tenants": demoTenant}))
	_, err = kv.CreateKey(demoVault, demoKey, "RSA", 3072, nil)
	must(err)
	must(kv.Grant(demoVault, kvemu.CustomerToken(byokAppID, demoEntra), "get", "wrapKey", "unwrapKey"))

	alloc, cancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 900))
	t.Cleanup(cancel)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	// The first action starts the browser and ties it to its context: the
	// tab's, not a step's timeout.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	p := &page{t: t, ctx: tab}

	admin, err := s.pageLink(proxy.URL, demoTenant, "byok.admin", "backup.operator")
	must(err)
	p.open(admin)
	p.wait("signed in, BYOK disabled", `document.getElementById('byok-state').textContent === 'disabled' && !document.getElementById('app').hidden`)
	if loc := p.eval(`location.href`); strings.Contains(loc, "token=") {
		t.Errorf("the token stays in the address bar: %s", loc)
	}
	p.shot("01-signed-in", "body")

	t.Run("RefusedKeyShowsFailedCheckAndFix", func(t *testing.T) {
		p.t = t
		p.fillKey("no-wrap-key")
		p.click("#byok-enable")
		p.wait("keyOperations failed", `[...document.querySelectorAll('#checks li.failed')].some(li => li.textContent.startsWith('wrapKey and unwrapKey allowed: failed'))`)
		msg := p.wait("error shown", `!document.getElementById('error').hidden && document.getElementById('error').textContent`)
		if !strings.Contains(msg, "(KeyOperationNotPermitted)") || !strings.Contains(msg, "wrapKey") {
			t.Errorf("error box = %q; want the fix (allow wrapKey/unwrapKey) and KeyOperationNotPermitted", msg)
		}
		if st := p.eval(`document.getElementById('byok-state').textContent`); st != "disabled" {
			t.Errorf("state after a refused key = %q, want disabled", st)
		}
		p.shot("02-refused-key", "#byok")
	})

	t.Run("UntaggedKeyShowsOwnershipStep", func(t *testing.T) {
		p.t = t
		p.fillKey(demoKey)
		p.click("#byok-enable")
		p.wait("keyOwnership failed", `[...document.querySelectorAll('#checks li.failed')].some(li => li.textContent.startsWith('Key tagged for this tenant: failed'))`)
		msg := p.wait("error shown", `document.getElementById('error').textContent.includes('KeyOwnershipNotProven') && document.getElementById('error').textContent`)
		if !strings.Contains(msg, "twinit-tenants") {
			t.Errorf("error box = %q; want the tag to set", msg)
		}
		// What to copy into the vault: application id, tag name and value.
		if got := p.eval(`[document.getElementById('app-id').textContent, document.getElementById('tag-name').textContent, document.getElementById('tag-value').textContent].join(' ')`); got != byokAppID+" twinit-tenants "+demoTenant {
			t.Errorf("grant and tag shown = %q", got)
		}
		p.shot("03-ownership-step", "#byok")
	})

	t.Run("GoodKeyEnables", func(t *testing.T) {
		p.t = t
		must(kv.SetTags(demoVault, demoKey, "", map[string]string{"twinit-tenants": demoTenant}))
		// Validate first: every check passes and nothing changes yet.
		p.click("#byok-validate")
		p.wait("every check passed", `document.querySelectorAll('#checks li.ok').length === 8 && document.getElementById('status').textContent.includes('passed every check')`)
		if st := p.eval(`document.getElementById('byok-state').textContent`); st != "disabled" {
			t.Errorf("state after Validate = %q, want disabled (validation changes nothing)", st)
		}
		p.click("#byok-enable")
		p.wait("state active", `document.getElementById('byok-state').textContent === 'active'`)
		if n := p.eval(`String(document.querySelectorAll('#checks li.ok').length)`); n != "8" {
			t.Errorf("passed checks listed = %s, want 8", n)
		}
		if key := p.eval(`document.getElementById('byok-key').textContent`); !strings.Contains(key, "/keys/"+demoKey+"/") {
			t.Errorf("key shown = %q", key)
		}
		p.shot("04-byok-active", "#byok")
	})

	// Badges carry their state as a class (s-completed, k-customer, …).
	t.Run("BackUpWithCustomerKey", func(t *testing.T) {
		p.t = t
		p.click("#backup-now")
		p.wait("backup completed with the customer key", `(() => { const li = document.querySelector('#backup-list li.backup');
			return !!li && !!li.querySelector('.s-completed') && !!li.querySelector('.k-customer'); })()`)
		p.shot("05-backup-customer-key", "#backups")
	})

	t.Run("KeyDisabledBackupFallsBack", func(t *testing.T) {
		p.t = t
		must(kv.SetEnabled(demoVault, demoKey, "", false))
		p.click("#backup-now")
		fb := p.wait("fallback badge", `(() => { const li = document.querySelectorAll('#backup-list li.backup');
			if (li.length !== 2 || !li[0].querySelector('.s-completed')) return '';
			const fb = li[0].querySelector('.b-fallback');
			return !!li[0].querySelector('.k-platform') && !fb.hidden && fb.textContent; })()`)
		if !strings.Contains(fb, "(KeyDisabled)") {
			t.Errorf("fallback shown as %q, want the KeyDisabled reason", fb)
		}
		p.shot("06-fallback-backup", "#backups")
	})

	restoreCustomerBackup := func() {
		p.click(`#backup-list li.backup:nth-child(2) button[data-act=restore]`)
		p.wait("restore form", `!document.getElementById('restore-form').hidden`)
		p.click(`#restore-form button[type=submit]`)
	}

	t.Run("RestoreRefusedWhileKeyDisabled", func(t *testing.T) {
		p.t = t
		restoreCustomerBackup()
		msg := p.wait("restore failed", `(() => { const b = document.getElementById('job-progress');
			return !b.hidden && b.querySelector('h3').textContent.endsWith(': failed') && b.textContent; })()`)
		if !strings.Contains(msg, "(CustomerKeyUnavailable)") {
			t.Errorf("refused restore shows %q, want its message and CustomerKeyUnavailable", msg)
		}
		p.shot("07-restore-refused", "#backups")
	})

	t.Run("RestoreProgressToSuccess", func(t *testing.T) {
		p.t = t
		must(kv.SetEnabled(demoVault, demoKey, "", true))
		restoreCustomerBackup()
		p.wait("restore succeeded", `(() => { const b = document.getElementById('job-progress');
			return b.querySelector('h3').textContent.endsWith(': succeeded'); })()`)
		// The bar and the counts end at the backup's totals.
		got := p.eval(`(() => { const b = document.getElementById('job-progress'); const pr = b.querySelector('progress');
			return pr.value + '/' + pr.max + ' ' + b.querySelector('p').textContent; })()`)
		want := fmt.Sprintf("%d/%d %d of %d records, %d of %d files", seeded.Bytes, seeded.Bytes, seeded.Records, seeded.Records, seeded.Files, seeded.Files)
		if !strings.HasPrefix(got, want) {
			t.Errorf("restore progress = %q, want prefix %q", got, want)
		}
		p.shot("08-restore-succeeded", "#backups")
	})

	// API.md §6: the newest completed backup is refused, another deleted and undeleted.
	t.Run("DeleteUndelete", func(t *testing.T) {
		p.t = t
		// The toggle reloads the list: mark today's rows and wait until
		// they are replaced, or a click may land on a row being removed.
		p.eval(`(document.querySelectorAll('#backup-list li.backup').forEach(li => li.dataset.stale = '1'), '')`)
		p.click("#include-deleted")
		p.wait("list reloaded", `document.querySelectorAll('#backup-list li.backup').length >= 2 && !document.querySelector('#backup-list li.backup[data-stale]')`)
		// The newest completed backup may not be deleted: 409 with its message.
		p.click(`#backup-list li.backup:nth-child(1) button[data-act=delete]`)
		p.wait("newest refused", `document.getElementById('error').textContent.includes('(Conflict)')`)
		p.click(`#backup-list li.backup:nth-child(2) button[data-act=delete]`)
		p.wait("deleted", `(() => { const li = document.querySelector('#backup-list li.backup:nth-child(2)');
			return !!li.querySelector('.s-deleted') && !li.querySelector('.b-deleted').hidden &&
				!li.querySelector('button[data-act=undelete]').hidden && li.querySelector('button[data-act=restore]').hidden; })()`)
		p.shot("09-backup-deleted", "#backups")
		p.click(`#backup-list li.backup:nth-child(2) button[data-act=undelete]`)
		p.wait("undeleted", `!!document.querySelector('#backup-list li.backup:nth-child(2) .s-completed')`)
	})

	t.Run("ReadOnlyTokenSeesNoWriteControls", func(t *testing.T) {
		p.t = t
		reader, err := s.pageLink(proxy.URL, demoTenant, "byok.read")
		must(err)
		// A new tab: its own sessionStorage, and a real page load (the same
		// URL with another fragment would not reload the page).
		readerTab, cancel := chromedp.NewContext(tab)
		defer cancel()
		if err := chromedp.Do(readerTab); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		p.ctx = readerTab
		p.open(reader)
		p.wait("backups listed", `document.querySelectorAll('#backup-list li.backup').length === 2 && document.getElementById('byok-state').textContent !== '…'`)
		// Visible controls that need a write role, and editable fields.
		got := p.eval(`[...document.querySelectorAll('[data-needs]')].filter(e => e.offsetParent !== null)
			.map(e => e.id || e.dataset.act || e.textContent.trim())
			.concat([...document.querySelectorAll('fieldset[data-edit]')].filter(f => !f.disabled).map(f => 'fieldset:' + f.dataset.edit))
			.join(',')`)
		if got != "" {
			t.Errorf("write controls visible to byok.read: %s", got)
		}
		if who := p.eval(`document.getElementById('who').textContent`); !strings.HasSuffix(who, "roles: byok.read") {
			t.Errorf("who = %q", who)
		}
		p.shot("10-read-only", "body")
	})

	// Every exchange the page made, against the API reference.
	v := openapitest.NewValidator(t)
	ex := rec.Exchanges()
	n := v.Check(t, ex)
	seen := map[string]bool{}
	for _, e := range ex {
		seen[fmt.Sprintf("%s %d", e.Method, e.Status)] = true
	}
	for _, want := range []string{"GET 200", "PUT 200", "PUT 422", "POST 200", "POST 202"} {
		if !seen[want] {
			t.Errorf("no %s exchange recorded (%d recorded)", want, n)
		}
	}
	t.Logf("%d API exchanges validated against docs/openapi.yaml", n)
}

// page is one browser tab and the test step using it.
type page struct {
	t   testing.TB
	ctx context.Context
}

func (p *page) do(what string, a ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, a...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// open loads url and answers the page's confirm() dialogs with OK, as the
// person the test plays would.
func (p *page) open(url string) {
	p.t.Helper()
	p.do("open the page", chromedp.Navigate(url))
	p.eval(`(window.confirm = () => true, '')`)
}

func (p *page) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// wait evaluates js every 100 ms until it is truthy and returns its value
// as text; after 90 s the test fails with what the page shows. (Polled from
// Go: a page-side poll would need eval, which the page's CSP forbids.)
func (p *page) wait(what, js string) string {
	p.t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < 90*time.Second {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		cancel()
		switch x := v.(type) {
		case nil, bool, string, float64:
			if err == nil && x != nil && x != false && x != "" && x != 0.0 {
				p.t.Logf("%s after %v", what, time.Since(start).Round(10*time.Millisecond))
				return fmt.Sprint(x)
			}
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	shown, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById('error').textContent + ' | ' + document.getElementById('main').innerText`))
	p.t.Fatalf("waiting for %s: not seen within 90 s (last error %v)\npage shows: %s", what, last, shown)
	return ""
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

func (p *page) fillKey(key string) {
	p.t.Helper()
	for id, v := range map[string]string{"#f-vault": demoVault, "#f-key": key, "#f-entra": demoEntra} {
		p.eval(`(document.querySelector('` + id + `').value = '')`)
		p.do("fill "+id, chromedp.SendKeys(chromedp.CSS(id), v))
	}
}

// shot takes a screenshot of sel; with -update-screenshots it is written
// to docs/screenshots/<name>.png.
func (p *page) shot(name, sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil || len(img) == 0 {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if !*updateScreenshots {
		return
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
