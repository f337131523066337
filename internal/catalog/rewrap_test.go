package catalog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// A re-wrapped backup's JSON adds rewrappedAt and previousKeyIds and keeps
// fallbackReason; a backup never re-wrapped has neither field.
func TestBackupJSONAfterRewrap(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	b := NewBackup("acme", ReasonSchedule, at)
	b.KeySource, b.KeyID = keywrap.Platform, "https://p.vault.azure.net/keys/p/1"
	b.FallbackReason = &errcode.Detail{Code: errcode.KeyDisabled, Message: "m"}
	plain, _ := json.Marshal(b)
	if strings.Contains(string(plain), "rewrappedAt") || strings.Contains(string(plain), "previousKeyIds") {
		t.Fatalf("never re-wrapped: %s", plain)
	}
	b.RecordRewrap(keywrap.Customer, "https://c.vault.azure.net/keys/k/2", "entra", "acme/x/a/rewrap-manifest-000001", "sha256:00", at)
	out, _ := json.Marshal(b)
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	prev, _ := m["previousKeyIds"].([]any)
	if m["keySource"] != "customer" || m["keyId"] != "https://c.vault.azure.net/keys/k/2" || m["rewrappedAt"] != "2026-05-06T07:08:09.000Z" ||
		len(prev) != 1 || prev[0] != "https://p.vault.azure.net/keys/p/1" || m["fallbackReason"] == nil {
		t.Fatalf("re-wrapped JSON %s", out)
	}
	if b.Rewraps != 1 || b.ManifestDigest != "sha256:00" {
		t.Fatalf("row %+v", b)
	}
}

// The re-wrap lifecycle: queued → running → succeeded, failed may retry,
// succeeded is final; Start resets the progress.
func TestRewrapTransitions(t *testing.T) {
	r := NewRewrap("acme", keywrap.Customer, false, false, time.Now())
	if r.Succeed(time.Now()) == nil {
		t.Fatal("queued → succeeded allowed")
	}
	if err := r.Start("a1", time.Now(), false); err != nil {
		t.Fatal(err)
	}
	r.Progress.Done = 3
	if err := r.Fail(time.Now(), errcode.Detail{Code: errcode.Internal}); err != nil {
		t.Fatal(err)
	}
	if r.Start("a2", time.Now(), false) == nil {
		t.Fatal("failed → running without retry allowed")
	}
	if err := r.Start("a2", time.Now(), true); err != nil || r.Progress.Done != 0 || r.Attempts != 2 {
		t.Fatalf("retry: %v %+v", err, r)
	}
	if err := r.Succeed(time.Now()); err != nil || r.Phase() != PhaseEnded || r.Active() {
		t.Fatal(err)
	}
	if r.Start("a3", time.Now(), true) == nil {
		t.Fatal("succeeded → running allowed")
	}
}
