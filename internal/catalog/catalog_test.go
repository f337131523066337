package catalog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

func TestNewIDShapeAndOrder(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	var ids []string
	for i := range 200 {
		ids = append(ids, catalog.NewID(start.Add(time.Duration(i)*time.Millisecond)))
	}
	for _, id := range ids {
		if !catalog.ValidID(id) || len(id) > 64 {
			t.Fatalf("NewID returned %q, which ValidID rejects", id)
		}
		for _, c := range id {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", c) {
				t.Fatalf("id %q has a character that is not URL-safe: %q", id, c)
			}
		}
	}
	if !slices.IsSorted(ids) {
		t.Fatal("ids minted at increasing times do not sort in time order")
	}
	got, ok := catalog.IDTime(ids[0])
	if !ok || !got.Equal(start) {
		t.Fatalf("IDTime = %v, %v; want %v", got, ok, start.UTC())
	}
	if a, b := catalog.NewID(start), catalog.NewID(start); a == b {
		t.Fatalf("two ids in the same millisecond collide: %s", a)
	}
}

func TestValidIDRejects(t *testing.T) {
	good := catalog.NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, s := range []string{
		"", ".", "..", ".hidden", strings.Repeat("a", 65),
		"20260102T030405.000Z-aaaaaaaaaaaaaa/a",
		"2026010 T030405.000Z-aaaaaaaaaaaaaaaa", "a%2Fb", "a?b", "a#b", "a\\b", "é",
	} {
		if catalog.ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
	// Contract §3 ids minted elsewhere are accepted.
	for _, s := range []string{good, "b-001", "backup_2026.11.26~1", strings.Repeat("Z", 64)} {
		if !catalog.ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	// Only minted ids carry a time.
	if _, ok := catalog.IDTime("b-001"); ok {
		t.Error("IDTime of a foreign id")
	}
	if at, ok := catalog.IDTime(good); !ok || !at.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("IDTime(%q) = %v %v", good, at, ok)
	}
}

func FuzzValidID(f *testing.F) {
	f.Add(catalog.NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	f.Add("20260102T030405.000Z-aaaaaaaaaaaaaaaa")
	f.Add("../../x")
	f.Fuzz(func(t *testing.T, s string) {
		if !catalog.ValidID(s) {
			return
		}
		// Whatever passes is safe as a RowKey and a blob path segment,
		// and round-trips through a continuation token.
		if strings.ContainsAny(s, "/\\#?'\"% \t\n") || len(s) > 64 {
			t.Fatalf("ValidID accepted unsafe %q", s)
		}
		id, err := catalog.DecodeToken(catalog.EncodeToken(s))
		if err != nil || id != s {
			t.Fatalf("token round trip of %q: %q, %v", s, id, err)
		}
	})
}

func TestToken(t *testing.T) {
	id := catalog.NewID(time.Now())
	got, err := catalog.DecodeToken(catalog.EncodeToken(id))
	if err != nil || got != id {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	if got, err := catalog.DecodeToken(""); err != nil || got != "" {
		t.Fatalf("empty token: %q, %v", got, err)
	}
	for _, tok := range []string{"%%%", "djIu" + catalog.EncodeToken(id), catalog.EncodeToken("no/pe"), catalog.EncodeToken("..")} {
		if _, err := catalog.DecodeToken(tok); !errors.Is(err, catalog.ErrInvalidToken) {
			t.Errorf("DecodeToken(%q) = %v, want ErrInvalidToken", tok, err)
		}
	}
}

func TestListOptionsPageSize(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, 50}, {-1, 50}, {1, 1}, {1000, 1000}, {1001, 1000}} {
		if got := (catalog.ListOptions{MaxResults: c.in}).PageSize(); got != c.want {
			t.Errorf("PageSize(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestBackupTransitions(t *testing.T) {
	all := []catalog.Status{catalog.StatusQueued, catalog.StatusRunning, catalog.StatusCompleted, catalog.StatusFailed}
	allowed := map[string]bool{ // "from>to/retry"
		"queued>running/false": true, "queued>running/true": true,
		"queued>failed/false": true, "queued>failed/true": true,
		"running>completed/false": true, "running>completed/true": true,
		"running>failed/false": true, "running>failed/true": true,
		"running>running/true": true,
		// A backup waiting out a transient key failure (Requeue).
		"running>queued/false": true, "running>queued/true": true,
		"failed>running/true": true,
	}
	for _, from := range all {
		for _, to := range all {
			for _, retry := range []bool{false, true} {
				name := fmt.Sprintf("%s>%s/%t", from, to, retry)
				err := catalog.CheckBackupTransition(from, to, retry)
				if allowed[name] != (err == nil) {
					t.Errorf("%s: err = %v, allowed = %t", name, err, allowed[name])
				}
				var te *catalog.TransitionError
				if err != nil && (!errors.As(err, &te) || !errors.Is(err, catalog.ErrIllegalTransition) || errcode.CodeOf(err) != errcode.Conflict) {
					t.Errorf("%s: error %v is not a TransitionError with code Conflict", name, err)
				}
			}
		}
	}
}

func TestRestoreTransitions(t *testing.T) {
	all := []catalog.RestoreState{catalog.RestoreQueued, catalog.RestoreRunning, catalog.RestoreSucceeded, catalog.RestoreFailed}
	allowed := map[string]bool{
		"queued>running/false": true, "queued>running/true": true,
		"queued>failed/false": true, "queued>failed/true": true,
		"running>succeeded/false": true, "running>succeeded/true": true,
		"running>failed/false": true, "running>failed/true": true,
		"running>running/true": true,
		"failed>running/true":  true,
	}
	for _, from := range all {
		for _, to := range all {
			for _, retry := range []bool{false, true} {
				name := fmt.Sprintf("%s>%s/%t", from, to, retry)
				err := catalog.CheckRestoreTransition(from, to, retry)
				if allowed[name] != (err == nil) {
					t.Errorf("%s: err = %v, allowed = %t", name, err, allowed[name])
				}
				if err != nil && !errors.Is(err, catalog.ErrIllegalTransition) {
					t.Errorf("%s: %v does not match ErrIllegalTransition", name, err)
				}
			}
		}
	}
}

func TestBackupLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	if b.Status != catalog.StatusQueued || !catalog.ValidID(b.BackupID) || b.Restorable() {
		t.Fatalf("new backup: %+v", b)
	}
	if err := b.Complete(now); !errors.Is(err, catalog.ErrIllegalTransition) {
		t.Fatalf("queued -> completed: %v", err)
	}
	if err := b.Heartbeat(now); err == nil {
		t.Fatal("heartbeat on a queued backup succeeded")
	}
	if err := b.Start("a1", now.Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	if err := b.Fail(now.Add(time.Minute), errcode.Detail{Code: errcode.KeyDisabled, Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start("a2", now.Add(2*time.Minute), false); err == nil {
		t.Fatal("failed -> running without retry succeeded")
	}
	if err := b.Start("a2", now.Add(2*time.Minute), true); err != nil {
		t.Fatal(err)
	}
	if b.Error != nil || !b.CompletedAt.IsZero() || b.Attempts != 2 || b.Attempt != "a2" || !b.StartedAt.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("retry did not reset the attempt: %+v", b)
	}
	if err := b.Heartbeat(now.Add(3 * time.Minute)); err != nil || !b.HeartbeatAt.Equal(now.Add(3*time.Minute)) {
		t.Fatalf("heartbeat: %v", err)
	}
	if err := b.Complete(now.Add(4 * time.Minute)); err != nil || !b.Restorable() {
		t.Fatalf("complete: %v", err)
	}
	if err := b.Start("a3", now, true); err == nil {
		t.Fatal("completed backup restarted")
	}
	if err := b.Fail(now, errcode.Detail{}); err == nil {
		t.Fatal("completed backup failed afterwards")
	}
}

func TestRestoreLifecycle(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := catalog.NewRestore("acme", "b", "", catalog.ModeMerge, false, now)
	if r.TargetTenant != "acme" || r.State != catalog.RestoreQueued {
		t.Fatalf("new restore: %+v", r)
	}
	if err := r.SetProgress(catalog.Progress{Records: 1}, now); err == nil {
		t.Fatal("progress on a queued restore accepted")
	}
	if err := r.Start("w", now, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetProgress(catalog.Progress{Records: 5, Files: 1, Bytes: 9}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("w2", now, true); err != nil || r.Progress != (catalog.Progress{}) {
		t.Fatalf("takeover must restart progress: %+v, %v", r.Progress, err)
	}
	if err := r.Succeed(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("w3", now, true); !errors.Is(err, catalog.ErrIllegalTransition) {
		t.Fatalf("succeeded restore restarted: %v", err)
	}
}

func TestBackupJSON(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 678_900_000, time.FixedZone("x", -7200))
	b := catalog.NewBackup("acme", catalog.ReasonSchedule, now)
	b.BackupID = "20260102T050405.678Z-aaaaaaaaaaaaaaaa"
	b.Attempt, b.ManifestBlob, b.ETag = "secret-attempt", "m", `W/"1"`
	b.ManifestDigest = catalog.DigestManifest([]byte("m"))
	got, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"backupId":"20260102T050405.678Z-aaaaaaaaaaaaaaaa","tenant":"acme","status":"queued","reason":"schedule",` +
		`"requestedAt":"2026-01-02T05:04:05.678Z","startedAt":null,"completedAt":null,"keySource":null,"keyId":null,` +
		`"records":0,"files":0,"bytes":0,"storedBytes":0,"chunks":0,"error":null,` +
		`"progress":{"records":0,"files":0,"bytes":0,"totalBytes":null}}`
	if string(got) != want {
		t.Fatalf("queued backup JSON\n got %s\nwant %s", got, want)
	}

	b.Status, b.StartedAt, b.CompletedAt = catalog.StatusCompleted, now, now.Add(time.Minute)
	b.KeySource, b.KeyID = keywrap.Platform, "https://p.vault.azure.net/keys/k/v1"
	b.FallbackReason = &errcode.Detail{Code: errcode.KeyDisabled, Message: "Enable the key."}
	b.Records, b.Files, b.Bytes, b.StoredBytes, b.Chunks = 1200, 40, 123456789, 123470000, 30
	got, _ = json.Marshal(b)
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"backupId", "tenant", "status", "reason", "requestedAt", "startedAt", "completedAt",
		"keySource", "keyId", "fallbackReason", "records", "files", "bytes", "storedBytes", "chunks", "error", "progress"}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("fields %v, want %v", keys, wantKeys)
	}
	if fr := m["fallbackReason"].(map[string]any); fr["code"] != "KeyDisabled" || m["keySource"] != "platform" ||
		m["completedAt"] != "2026-01-02T05:05:05.678Z" || m["bytes"] != float64(123456789) {
		t.Fatalf("completed backup JSON: %s", got)
	}
	b.Status, b.Error = catalog.StatusFailed, &errcode.Detail{Code: errcode.CustomerKeyUnavailable, Message: "x"}
	got, _ = json.Marshal(b)
	if !strings.Contains(string(got), `"error":{"code":"CustomerKeyUnavailable","message":"x"}`) {
		t.Fatalf("failed backup JSON: %s", got)
	}
}

// TestBackupProgress: a running backup's progress is set with the
// heartbeat, shown in its JSON with totalBytes null until known, restarted
// by a new attempt, kept by a failure; a completed backup shows its final
// counts (rows written before progress existed included).
func TestBackupProgress(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	progressOf := func(b *catalog.Backup) string {
		t.Helper()
		got, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Progress json.RawMessage }
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatal(err)
		}
		return string(m.Progress)
	}
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	if err := b.SetProgress(catalog.BackupProgress{Records: 1}, now); err == nil {
		t.Fatal("progress on a queued backup accepted")
	}
	if err := b.Start("a1", now, false); err != nil {
		t.Fatal(err)
	}
	if err := b.SetProgress(catalog.BackupProgress{Records: 40, Files: 3, Bytes: 3000}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if !b.HeartbeatAt.Equal(now.Add(time.Second)) {
		t.Fatalf("progress is not a heartbeat: %v", b.HeartbeatAt)
	}
	if got := progressOf(b); got != `{"records":40,"files":3,"bytes":3000,"totalBytes":null}` {
		t.Fatalf("running, total unknown: %s", got)
	}
	if err := b.SetProgress(catalog.BackupProgress{Records: 50, Files: 4, Bytes: 4000, TotalBytes: 9000, TotalKnown: true}, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := progressOf(b); got != `{"records":50,"files":4,"bytes":4000,"totalBytes":9000}` {
		t.Fatalf("running, total known: %s", got)
	}
	if err := b.Fail(now.Add(time.Minute), errcode.Detail{Code: errcode.Internal, Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := progressOf(b); got != `{"records":50,"files":4,"bytes":4000,"totalBytes":9000}` {
		t.Fatalf("failed backup keeps its last progress: %s", got)
	}
	if err := b.Start("a2", now.Add(time.Hour), true); err != nil || b.Progress != (catalog.BackupProgress{}) {
		t.Fatalf("a retry must restart progress: %+v, %v", b.Progress, err)
	}
	b.Records, b.Files, b.Bytes = 60, 5, 5000
	if err := b.Complete(now.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := progressOf(b); got != `{"records":60,"files":5,"bytes":5000,"totalBytes":5000}` {
		t.Fatalf("completed backup shows its final counts: %s", got)
	}
}

func TestRestoreJSON(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := catalog.NewRestore("acme", "b1", "", "", true, now)
	r.RestoreID = "r1"
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"restoreId":"r1","backupId":"b1","tenant":"acme","targetTenant":"acme","mode":null,"dryRun":true,` +
		`"state":"queued","startedAt":null,"completedAt":null,"progress":{"records":0,"files":0,"bytes":0},"error":null}`
	if string(got) != want {
		t.Fatalf("restore JSON\n got %s\nwant %s", got, want)
	}
}

func TestBackupPageJSON(t *testing.T) {
	got, _ := json.Marshal(catalog.BackupPage{})
	if string(got) != `{"backups":[],"continuationToken":null}` {
		t.Fatalf("empty page: %s", got)
	}
	got, _ = json.Marshal(catalog.BackupPage{Backups: []*catalog.Backup{{BackupID: "x"}}, ContinuationToken: "tok"})
	if !strings.HasPrefix(string(got), `{"backups":[{"backupId":"x"`) || !strings.HasSuffix(string(got), `"continuationToken":"tok"}`) {
		t.Fatalf("page: %s", got)
	}
}

func TestRestorePageJSON(t *testing.T) {
	got, _ := json.Marshal(catalog.RestorePage{})
	if string(got) != `{"restores":[],"continuationToken":null}` {
		t.Fatalf("empty page: %s", got)
	}
	got, _ = json.Marshal(catalog.RestorePage{Restores: []*catalog.Restore{{RestoreID: "x"}}, ContinuationToken: "tok"})
	if !strings.HasPrefix(string(got), `{"restores":[{"restoreId":"x"`) || !strings.HasSuffix(string(got), `"continuationToken":"tok"}`) {
		t.Fatalf("page: %s", got)
	}
}

// TestBackupJSONHidesEntraTenant: the Entra tenant id recorded for
// restores is internal, never part of the API's backup object.
func TestBackupJSONHidesEntraTenant(t *testing.T) {
	b := catalog.NewBackup("acme", catalog.ReasonManual, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b.EntraTenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	got, _ := json.Marshal(b)
	if strings.Contains(string(got), b.EntraTenantID) || strings.Contains(strings.ToLower(string(got)), "entra") {
		t.Fatalf("backup JSON exposes the Entra tenant: %s", got)
	}
}

func FuzzDecodeToken(f *testing.F) {
	f.Add(catalog.EncodeToken(catalog.NewID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	f.Add("")
	f.Add("djEu")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := catalog.DecodeToken(tok)
		switch {
		case err != nil && !errors.Is(err, catalog.ErrInvalidToken):
			t.Fatalf("error %v is not ErrInvalidToken", err)
		case err == nil && tok != "" && !catalog.ValidID(id):
			t.Fatalf("token %q decoded to invalid id %q", tok, id)
		case err == nil && tok != "" && catalog.EncodeToken(id) != tok:
			// Not required for safety, but one canonical token per position.
			if _, err2 := catalog.DecodeToken(catalog.EncodeToken(id)); err2 != nil {
				t.Fatalf("re-encoded token of %q does not decode: %v", id, err2)
			}
		}
	})
}

// A running backup requeued to wait out a transient key failure is queued
// with lastError in its JSON (an additive field, absent otherwise), keeps
// its first attempt time across the next start, and finishing clears the
// wait.
func TestBackupRequeue(t *testing.T) {
	now := time.Date(2026, 1, 2, 5, 4, 5, 678_000_000, time.UTC)
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	if err := b.Requeue(now, errcode.Detail{}); err == nil {
		t.Fatal("a queued backup was requeued")
	}
	if err := b.Start("a1", now, false); err != nil {
		t.Fatal(err)
	}
	why := errcode.Detail{Code: errcode.Throttled, Message: "Key Vault is throttling; retried."}
	if err := b.Requeue(now.Add(time.Minute), why); err != nil {
		t.Fatal(err)
	}
	if b.Status != catalog.StatusQueued || b.Attempt != "" || !b.HeartbeatAt.IsZero() || !b.RetryAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("requeued row = %+v", b)
	}
	got, _ := json.Marshal(b)
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if le, _ := m["lastError"].(map[string]any); m["status"] != "queued" || le["code"] != "Throttled" || le["message"] != why.Message {
		t.Fatalf("requeued JSON %s", got)
	}
	c := b.Clone()
	c.LastError.Code = errcode.Internal
	if b.LastError.Code != errcode.Throttled {
		t.Fatal("Clone shares LastError")
	}
	if err := b.Start("a2", now.Add(2*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if !b.FirstAttemptAt.Equal(now) || b.Attempts != 2 {
		t.Fatalf("restarted row = %+v", b)
	}
	if err := b.Complete(now.Add(3 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(b)
	if b.LastError != nil || !b.RetryAt.IsZero() || strings.Contains(string(got), "lastError") {
		t.Fatalf("completed row still waits: %s", got)
	}
}

// TestManifestDigestPinsTheManifest: a row with a digest matches exactly
// its manifest's bytes; a row written before digests (none) matches any.
func TestManifestDigestPinsTheManifest(t *testing.T) {
	m := []byte("BYOKBKUP\x01 the committed manifest")
	b := &catalog.Backup{ManifestDigest: catalog.DigestManifest(m)}
	if !strings.HasPrefix(b.ManifestDigest, "sha256:") || len(b.ManifestDigest) != len("sha256:")+64 {
		t.Fatalf("digest %q", b.ManifestDigest)
	}
	if !b.MatchesManifest(m) {
		t.Fatal("the pinned manifest does not match")
	}
	other := append([]byte(nil), m...)
	other[len(other)-1] ^= 1
	for _, o := range [][]byte{other, m[:len(m)-1], nil} {
		if b.MatchesManifest(o) {
			t.Fatalf("another manifest %q matches", o)
		}
	}
	if legacy := (&catalog.Backup{}); !legacy.MatchesManifest(other) {
		t.Fatal("a row without a digest must accept the manifest it names")
	}
}

// TestRowPhasesAndSharedPart: both kinds map their states onto the one
// lifecycle (internal/job) and expose the same shared part.
func TestRowPhasesAndSharedPart(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	r := catalog.NewRestore("acme", b.BackupID, "", catalog.ModeMerge, false, now)
	if b.Phase() != catalog.PhaseQueued || r.Phase() != catalog.PhaseQueued {
		t.Fatalf("new rows: %v %v", b.Phase(), r.Phase())
	}
	if err := r.Heartbeat(now); !errors.Is(err, catalog.ErrIllegalTransition) {
		t.Fatalf("heartbeat of a queued restore = %v", err)
	}
	if err := b.Start("a1", now, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("a1", now, false); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	if err := r.Heartbeat(later); err != nil || r.HeartbeatAt != later || r.JobPart().LastAlive() != later {
		t.Fatalf("heartbeat of a running restore = %v, at %v", err, r.HeartbeatAt)
	}
	for _, j := range []*catalog.Job{b.JobPart(), r.JobPart()} {
		if j.Attempt != "a1" || j.Attempts != 1 || !j.StartedAt.Equal(now) || !j.RequestedAt.Equal(now) {
			t.Fatalf("shared part after start = %+v", j)
		}
	}
	if b.Phase() != catalog.PhaseRunning || r.Phase() != catalog.PhaseRunning {
		t.Fatalf("started rows: %v %v", b.Phase(), r.Phase())
	}
	cause := errcode.Detail{Code: errcode.Internal, Message: "x"}
	if err := b.Fail(later, cause); err != nil {
		t.Fatal(err)
	}
	if err := r.Succeed(later); err != nil {
		t.Fatal(err)
	}
	if b.Phase() != catalog.PhaseEnded || r.Phase() != catalog.PhaseEnded || *b.Error != cause || r.Error != nil {
		t.Fatalf("ended rows: %v %v %+v %+v", b.Phase(), r.Phase(), b.Error, r.Error)
	}
	// Clone copies the shared part deeply.
	c := b.Clone()
	c.Error.Message = "changed"
	if b.Error.Message != "x" {
		t.Fatal("Clone shares the Error of the shared part")
	}
	if tn, id := r.Key(); tn != "acme" || id != r.RestoreID {
		t.Fatalf("restore key = %s %s", tn, id)
	}
}

// TestSoftDeleteLifecycle: only a completed backup is soft-deleted; it is
// undeletable before purgeAfter and only until its purge starts (blobs may
// be gone from then on, even if purgeAfter were moved); purged needs a
// started purge; the JSON shows the soft-delete fields only when set.
func TestSoftDeleteLifecycle(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []catalog.Status{catalog.StatusQueued, catalog.StatusRunning, catalog.StatusFailed} {
		b := catalog.NewBackup("acme", catalog.ReasonManual, now)
		b.Status = st
		if err := b.SoftDelete(now, now.Add(time.Hour), "x"); err == nil {
			t.Errorf("a %s backup was soft-deleted", st)
		}
	}
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	b.Status = catalog.StatusCompleted
	if j, _ := json.Marshal(b); strings.Contains(string(j), "deletedAt") || strings.Contains(string(j), "purgeAfter") {
		t.Errorf("completed backup JSON has soft-delete fields: %s", j)
	}
	if err := b.SoftDelete(now, now.Add(48*time.Hour), "alice"); err != nil {
		t.Fatal(err)
	}
	if j, _ := json.Marshal(b); !strings.Contains(string(j), `"deletedAt":"2026-05-01T00:00:00.000Z","purgeAfter":"2026-05-03T00:00:00.000Z","deletedBy":"alice"`) {
		t.Errorf("deleted backup JSON = %s", j)
	}
	if b.Purgeable(now.Add(47*time.Hour)) || b.StartPurge(now.Add(47*time.Hour)) == nil {
		t.Error("purge allowed before purgeAfter")
	}
	if err := b.Purge(now.Add(49 * time.Hour)); err == nil {
		t.Error("purged without a started purge")
	}
	if !b.Undeletable(now.Add(47 * time.Hour)) {
		t.Error("not undeletable before purgeAfter")
	}
	if b.Undeletable(now.Add(48 * time.Hour)) {
		t.Error("undeletable at purgeAfter")
	}
	if err := b.StartPurge(now.Add(49 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.PurgeAfter = now.Add(100 * time.Hour) // even a later window can't undo a started purge
	if b.Undeletable(now) || b.Undelete(now) == nil {
		t.Error("undeletable after its purge started")
	}
	if !b.Purgeable(now) {
		t.Error("a started purge is not resumable")
	}
	if err := b.Purge(now.Add(50 * time.Hour)); err != nil || b.Status != catalog.StatusPurged || b.Phase() != catalog.PhaseEnded {
		t.Fatalf("Purge = %v, %s", err, b.Status)
	}
	if b.Undelete(now) == nil || b.SoftDelete(now, now, "x") == nil {
		t.Error("purged is not final")
	}
}
