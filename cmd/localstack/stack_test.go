package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// TestStackComesUpAndServesTheAPI is the README's run command end to end:
// Azurite, the Key Vault emulator, the issuer, the packaged real handler
// behind the local runner; health, identity and an on-demand timer.
func TestStackComesUpAndServesTheAPI(t *testing.T) {
	s, _ := startStack(t, true)
	base := s.BaseURL()

	// The settings file beside host.json is what `func start` would read.
	var ls struct{ Values map[string]string }
	b, err := os.ReadFile(filepath.Join(s.app.AppDir, "local.settings.json"))
	if err != nil || json.Unmarshal(b, &ls) != nil {
		t.Fatalf("local.settings.json in the app root: %v", err)
	}
	if ls.Values["AzureWebJobsStorage"] != s.az.ConnectionString() || ls.Values["PLATFORM_CREDENTIAL"] != "emulator" {
		t.Errorf("written settings = %v", ls.Values)
	}

	resp, body := get(t, base+"/api/health", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health = %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, base+"/api/tenants/acme/byok", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token = %d, WWW-Authenticate %q; want 401 Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	tok, err := s.issuer.Token("acme", "byok.admin")
	if err != nil {
		t.Fatal(err)
	}
	resp, body = get(t, base+"/api/tenants/acme/byok", tok)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"disabled"`) {
		t.Errorf("GET byok = %d %s, want 200 with state disabled", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/admin/functions/ByokMonitor", "application/json", strings.NewReader(`{"input":""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("admin run = %d, want 202", resp.StatusCode)
	}
}

func get(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func tail(b []byte) string {
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// TestDemo is `bash scripts/run.sh` as a person sees it: the stack comes up
// and the demo walks through BYOK, a customer-key backup, a fallback backup,
// restores refused and then allowed, a verification, re-wraps (fallback
// backup to the customer key, then to a rotated version) and retention
// (soft delete, undelete, purge), all through the packaged handler behind
// the local runner.
func TestDemo(t *testing.T) {
	s, screen := startStack(t, false)
	if s.demoErr != nil {
		t.Fatalf("demo: %v", s.demoErr)
	}
	r := s.demoResult
	if r.CustomerBackup.KeySource != "customer" || r.FallbackBackup.FallbackReason == nil || r.RefusedRestore.Error == nil {
		t.Fatalf("demo result = %+v", r)
	}
	// The key is tagged in a visible step, after an untagged key was refused.
	if r.Ownership == nil || r.Ownership.TagName != "twinit-tenants" || r.Ownership.TagValue != demoTenant ||
		r.UntaggedRefusal == nil || r.UntaggedRefusal.Code != "KeyOwnershipNotProven" {
		t.Errorf("ownership step: %+v refused %+v", r.Ownership, r.UntaggedRefusal)
	}
	// The key that wrapped the first backup is the customer's, versioned.
	if !strings.Contains(r.CustomerBackup.KeyID, "/keys/"+demoKey+"/") {
		t.Errorf("customer backup keyId = %q", r.CustomerBackup.KeyID)
	}
	// Re-wrap (API.md §7): the fallback backup is wrapped with the
	// customer's key, then refused like any customer-key backup while the
	// key is disabled; after a rotation both backups name the new version.
	fb := r.FallbackRewrapped
	if r.RewrapPlatform.State != "succeeded" || fb.KeySource != "customer" || fb.KeyID != r.CustomerBackup.KeyID ||
		!slices.Contains(fb.PreviousKeyIDs, r.FallbackBackup.KeyID) {
		t.Errorf("re-wrap of the fallback backup: %+v, backup %s %s previous %v", r.RewrapPlatform, fb.KeySource, fb.KeyID, fb.PreviousKeyIDs)
	}
	if e := r.RefusedRewrapped.Error; r.RefusedRewrapped.State != "failed" || e == nil || e.Code != "CustomerKeyUnavailable" {
		t.Errorf("restore of the re-wrapped fallback backup with the key disabled: %+v", r.RefusedRewrapped)
	}
	if !strings.HasPrefix(r.RotatedKeyID, strings.TrimSuffix(r.CustomerBackup.KeyID, keyVersion(r.CustomerBackup.KeyID))) || r.RotatedKeyID == r.CustomerBackup.KeyID {
		t.Errorf("rotated key id %q, first %q", r.RotatedKeyID, r.CustomerBackup.KeyID)
	}
	if r.RewrapRotation.State != "succeeded" || r.RewrapRotation.Progress.Done != 2 || len(r.AfterRotation) != 2 {
		t.Errorf("re-wrap after the rotation: %+v", r.RewrapRotation)
	}
	for _, b := range r.AfterRotation {
		if b.KeyID != r.RotatedKeyID || keyVersion(b.KeyID) == keyVersion(r.CustomerBackup.KeyID) {
			t.Errorf("backup %s after the rotation names %s, want %s", b.BackupID, b.KeyID, r.RotatedKeyID)
		}
	}
	// Retention (API.md §6): soft delete by the run, undelete, purge.
	if b := r.SoftDeleted; b.BackupID != r.CustomerBackup.BackupID || b.Status != "deleted" || b.DeletedBy != "retention" ||
		b.PurgeAfter.Sub(b.DeletedAt) != 10*time.Second {
		t.Errorf("after the retention run: %+v", b)
	}
	if r.Undeleted.Status != "completed" {
		t.Errorf("after undelete: %s", r.Undeleted.Status)
	}
	if r.Purged.Status != "purged" || r.BlobsBefore == 0 || r.BlobsLeft != 0 {
		t.Errorf("purge: %s, blobs %d then %d", r.Purged.Status, r.BlobsBefore, r.BlobsLeft)
	}
	if n, err := s.countBackupBlobs(context.Background(), r.FallbackBackup.BackupID); err != nil || n == 0 {
		t.Errorf("the kept backup has %d blobs (%v)", n, err)
	}
	printWelcome(s)
	checkReadableOutput(t, s, screen.String())
}

// checkReadableOutput (issue 14 point 5): the screen is plain lines, no
// JSON log among them; it names the log file, which holds the JSON logs
// of the stack, the runner and the handler; it ends the demo with the
// Settings page's sign-in link.
func checkReadableOutput(t *testing.T, s *stack, screen string) {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "{") || json.Valid([]byte(l)) && strings.TrimSpace(l) != "" {
			t.Errorf("a JSON line on the screen: %s", l)
		}
	}
	for _, want := range []string{
		"Logs (JSON): " + s.cfg.LogFile,                // before the first step
		"ok   [8/8] run the demo",                      // steps as plain lines
		"Demo finished: every outcome is as expected.", // the summary
		s.BaseURL() + "/api/ui/?tenant=demo#token=",    // the sign-in link
		"Logs (JSON)          " + s.cfg.LogFile,        // the welcome
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen does not show %q", want)
		}
	}
	if filepath.Dir(s.cfg.LogFile) != s.cfg.DataDir {
		t.Errorf("log file %s is not in the data folder %s", s.cfg.LogFile, s.cfg.DataDir)
	}
	b, err := os.ReadFile(s.cfg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Msg       string `json:"msg"`
			Component string `json:"component"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg == "" {
			t.Errorf("a line of the log file is no JSON log record: %q", l)
			continue
		}
		seen[rec.Msg] = true
		seen["component="+rec.Component] = true
	}
	// The stack's own, the emulator's, the runner's, the handler's (its
	// startup line). Azurite keeps its own log beside its data.
	for _, want := range []string{"step done", "component=kvemu", "component=runner", "starting"} {
		if !seen[want] {
			t.Errorf("the log file has no %q record", want)
		}
	}
}

// startStack brings the stack up on free ports in a temporary folder, as
// `bash scripts/run.sh` does (its logs in the file openLog makes, its
// screen into the returned buffer), and closes it when the test ends; its
// logs are printed if the test failed.
func startStack(t *testing.T, noDemo bool) (*stack, *logtest.Buffer) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	screen := &logtest.Buffer{}
	cfg := config{Src: root, DataDir: data, Dist: filepath.Join(data, "dist"),
		KVAddr: "127.0.0.1:0", AuthAddr: "127.0.0.1:0", Out: screen, NoDemo: noDemo}
	closeLog, err := openLog(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	printLogs := func() {
		b, _ := os.ReadFile(cfg.LogFile)
		t.Logf("screen:\n%s\nlogs:\n%s", screen, tail(b))
	}
	// The stack lives as long as ctx: cancel it only when the test ends.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	s, err := up(ctx, cfg)
	if err != nil {
		printLogs()
		closeLog()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.close(stop)
		if t.Failed() {
			printLogs()
		}
		closeLog()
	})
	return s, screen
}
