// Package catalogtest is the conformance suite every [catalog.Store]
// implementation must pass (restic's backend/test pattern): the in-memory
// store and the Table Storage adapter run the same tests.
package catalogtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Run runs the suite. open returns the store under test; it may return the
// same store every time: each test uses its own random tenant ids.
func Run(t *testing.T, open func(t *testing.T) catalog.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s catalog.Store)
	}{
		{"BackupRoundTrip", testBackupRoundTrip},
		{"BackupCreateExists", testBackupCreateExists},
		{"BackupGetNotFound", testBackupGetNotFound},
		{"BackupUpdateETag", testBackupUpdateETag},
		{"BackupUpdateClearsFields", testBackupUpdateClearsFields},
		{"BackupStartRace", testBackupStartRace},
		{"BackupListNewestFirst", testBackupList},
		{"BackupListInvalidToken", testBackupListInvalidToken},
		{"StaleBackups", testStaleBackups},
		{"QueuedBackups", testQueuedBackups},
		{"ActiveBackup", testActiveBackup},
		{"RestoreLifecycle", testRestoreLifecycle},
		{"RestoreErrors", testRestoreErrors},
		{"RestoreListNewestFirst", testRestoreList},
		{"RestoreListInvalidToken", testRestoreListInvalidToken},
		{"StaleRestores", testStaleRestores},
		{"QueuedRestores", testQueuedRestores},
		{"BackupSoftDelete", testBackupSoftDelete},
		{"ScanBackups", testScanBackups},
		{"ScanBackupsByStatus", testScanBackupsByStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// tenant returns a fresh valid tenant id.
func tenant(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

var base = time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC)

func fullBackup(tn string) *catalog.Backup {
	b := catalog.NewBackup(tn, catalog.ReasonManual, base)
	b.Status = catalog.StatusCompleted
	b.StartedAt = base.Add(time.Second)
	b.CompletedAt = base.Add(time.Minute)
	b.KeySource = keywrap.Platform
	b.KeyID = "https://platform-kv.vault.azure.net/keys/backup/0123456789abcdef0123456789abcdef"
	b.FallbackReason = &errcode.Detail{Code: errcode.KeyDisabled, Message: "The customer key is disabled."}
	b.Records, b.Files, b.Bytes, b.StoredBytes, b.Chunks = 1200, 40, 1<<40+5, 1<<40+99, 30
	b.Attempt, b.Attempts = "attempt-1", 2
	b.ManifestBlob = tn + "/" + b.BackupID + "/manifest"
	b.ManifestDigest = catalog.DigestManifest([]byte("the manifest"))
	b.Streams = map[string]int64{"records": 3, "files": 27}
	b.HeartbeatAt = base.Add(50 * time.Second)
	b.EntraTenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	b.FirstAttemptAt = base.Add(2 * time.Second)
	b.LastError = &errcode.Detail{Code: errcode.Throttled, Message: "Key Vault is throttling."}
	b.RetryAt = base.Add(3 * time.Second)
	b.ResentAt = base.Add(4 * time.Second)
	b.RewrappedAt = base.Add(4 * time.Second)
	b.PreviousKeyIDs = []string{"https://contoso-kv.vault.azure.net/keys/k/00000000000000000000000000000001"}
	b.Rewraps = 1
	b.Progress = catalog.BackupProgress{Records: 1100, Files: 39, Bytes: 1 << 40, TotalBytes: 1<<40 + 5, TotalKnown: true}
	return b
}

// runningBackup is mid-run: progress with a known total of zero bytes (a
// tenant without files), which must not read back as unknown.
func runningBackup(tn string) *catalog.Backup {
	b := catalog.NewBackup(tn, catalog.ReasonManual, base)
	b.Status, b.StartedAt, b.Attempt, b.Attempts = catalog.StatusRunning, base.Add(time.Second), "a1", 1
	b.HeartbeatAt = base.Add(2 * time.Second)
	b.Progress = catalog.BackupProgress{Records: 7, TotalKnown: true}
	return b
}

func ctx(t *testing.T) context.Context { return t.Context() }

func equalBackup(t *testing.T, got, want *catalog.Backup) {
	t.Helper()
	g, w := got.Clone(), want.Clone()
	g.ETag, w.ETag = "", ""
	w.Normalize()
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("backup read back differs:\n got %+v\nwant %+v", g, w)
	}
}

func testBackupRoundTrip(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	for _, b := range []*catalog.Backup{fullBackup(tn), catalog.NewBackup(tn, catalog.ReasonSchedule, base), runningBackup(tn)} {
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		if b.ETag == "" {
			t.Fatal("CreateBackup did not set the ETag")
		}
		got, err := s.GetBackup(ctx(t), tn, b.BackupID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ETag != b.ETag {
			t.Fatalf("ETag after Get %q, after Create %q", got.ETag, b.ETag)
		}
		equalBackup(t, got, b)
	}
}

func testBackupCreateExists(t *testing.T, s catalog.Store) {
	b := catalog.NewBackup(tenant(t), catalog.ReasonSchedule, base)
	if err := s.CreateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	dup := b.Clone()
	dup.Reason = catalog.ReasonManual
	err := s.CreateBackup(ctx(t), dup)
	if !errors.Is(err, catalog.ErrExists) || errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("second create: got %v, want ErrExists with code Conflict", err)
	}
	got, err := s.GetBackup(ctx(t), b.Tenant, b.BackupID)
	if err != nil || got.Reason != catalog.ReasonSchedule {
		t.Fatalf("duplicate create changed the row: %+v, %v", got, err)
	}
}

func testBackupGetNotFound(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	b := catalog.NewBackup(tn, catalog.ReasonSchedule, base)
	if err := s.CreateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tenant, id string }{
		{tn, catalog.NewID(base)}, // other id
		{tenant(t), b.BackupID},   // same id, other tenant: isolation
	} {
		_, err := s.GetBackup(ctx(t), c.tenant, c.id)
		if !errors.Is(err, catalog.ErrNotFound) || errcode.CodeOf(err) != errcode.NotFound {
			t.Fatalf("Get(%s, %s): got %v, want ErrNotFound", c.tenant, c.id, err)
		}
	}
	missing := catalog.NewBackup(tn, catalog.ReasonSchedule, base)
	missing.ETag = b.ETag
	if err := s.UpdateBackup(ctx(t), missing); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Update of a missing row: got %v, want ErrNotFound", err)
	}
}

func testBackupUpdateETag(t *testing.T, s catalog.Store) {
	b := catalog.NewBackup(tenant(t), catalog.ReasonSchedule, base)
	if err := s.CreateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	stale := b.Clone()
	if err := b.Start("a1", base.Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	first := b.ETag
	if err := s.UpdateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	if b.ETag == first || b.ETag == "" {
		t.Fatalf("Update did not set a new ETag: %q", b.ETag)
	}
	if err := stale.Start("a2", base.Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateBackup(ctx(t), stale)
	if !errors.Is(err, catalog.ErrConflict) || errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("update with a stale ETag: got %v, want ErrConflict", err)
	}
	noTag := b.Clone()
	noTag.ETag = ""
	if err := s.UpdateBackup(ctx(t), noTag); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("update without ETag: got %v, want ErrConflict", err)
	}
	got, err := s.GetBackup(ctx(t), b.Tenant, b.BackupID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempt != "a1" || got.Status != catalog.StatusRunning {
		t.Fatalf("row after the refused update: attempt %q status %q, want a1 running", got.Attempt, got.Status)
	}
}

func testBackupUpdateClearsFields(t *testing.T, s catalog.Store) {
	b := fullBackup(tenant(t))
	b.Status = catalog.StatusFailed
	b.Error = &errcode.Detail{Code: errcode.CustomerKeyUnavailable, Message: "The key is gone."}
	if err := s.CreateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	if err := b.Start("retry-1", base.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	b.FallbackReason, b.Streams, b.KeyID, b.KeySource = nil, nil, "", ""
	if err := s.UpdateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBackup(ctx(t), b.Tenant, b.BackupID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != nil || !got.CompletedAt.IsZero() || got.FallbackReason != nil || got.Streams != nil || got.KeyID != "" ||
		got.Progress != (catalog.BackupProgress{}) {
		t.Fatalf("cleared fields came back: %+v", got)
	}
	equalBackup(t, got, b)
}

// testBackupStartRace: two workers read the queued row and both try to
// start it; the ETag lets exactly one win.
func testBackupStartRace(t *testing.T, s catalog.Store) {
	b := catalog.NewBackup(tenant(t), catalog.ReasonSchedule, base)
	if err := s.CreateBackup(ctx(t), b); err != nil {
		t.Fatal(err)
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		mine := b.Clone()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mine.Start(string(rune('a'+i)), base, false); err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.UpdateBackup(ctx(t), mine)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, catalog.ErrConflict):
			t.Fatalf("loser got %v, want ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d workers started the same backup, want exactly 1", wins)
	}
}

func testBackupList(t *testing.T, s catalog.Store) {
	tn, other := tenant(t), tenant(t)
	var ids []string // oldest first
	for i := range 7 {
		b := catalog.NewBackup(tn, catalog.ReasonSchedule, base.Add(time.Duration(i)*time.Hour))
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.BackupID)
	}
	if err := s.CreateBackup(ctx(t), catalog.NewBackup(other, catalog.ReasonSchedule, base.Add(3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	var got []string
	var sizes []int
	token := ""
	for range 10 {
		page, err := s.ListBackups(ctx(t), tn, catalog.ListOptions{MaxResults: 3, ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Backups))
		for _, b := range page.Backups {
			if b.Tenant != tn || b.ETag == "" {
				t.Fatalf("listed row %+v: wrong tenant or no ETag", b)
			}
			got = append(got, b.BackupID)
		}
		if token = page.ContinuationToken; token == "" {
			break
		}
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(sizes, []int{3, 3, 1}) {
		t.Fatalf("listing: pages %v ids %v, want pages [3 3 1] ids %v", sizes, got, want)
	}
	// Exactly one page: no token.
	page, err := s.ListBackups(ctx(t), tn, catalog.ListOptions{MaxResults: 7})
	if err != nil || len(page.Backups) != 7 || page.ContinuationToken != "" {
		t.Fatalf("page of exactly 7: %d rows, token %q, %v", len(page.Backups), page.ContinuationToken, err)
	}
	// Default size covers everything; an empty tenant lists nothing.
	page, err = s.ListBackups(ctx(t), tn, catalog.ListOptions{})
	if err != nil || len(page.Backups) != 7 {
		t.Fatalf("default page: %d rows, %v", len(page.Backups), err)
	}
	page, err = s.ListBackups(ctx(t), tenant(t), catalog.ListOptions{})
	if err != nil || len(page.Backups) != 0 || page.ContinuationToken != "" {
		t.Fatalf("empty tenant: %+v, %v", page, err)
	}
}

// testActiveBackup: the newest queued or running backup of the tenant, never
// a finished one or another tenant's; ErrNotFound when there is none.
func testActiveBackup(t *testing.T, s catalog.Store) {
	tn, other := tenant(t), tenant(t)
	if _, err := s.ActiveBackup(ctx(t), tn); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("tenant without backups: got %v, want ErrNotFound", err)
	}
	mk := func(tn string, hour int, st catalog.Status) *catalog.Backup {
		t.Helper()
		b := catalog.NewBackup(tn, catalog.ReasonManual, base.Add(time.Duration(hour)*time.Hour))
		b.Status = st
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	mk(tn, 1, catalog.StatusCompleted)
	mk(tn, 2, catalog.StatusFailed)
	mk(other, 9, catalog.StatusQueued)
	if _, err := s.ActiveBackup(ctx(t), tn); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("only finished backups: got %v, want ErrNotFound", err)
	}
	running := mk(tn, 3, catalog.StatusRunning)
	mk(tn, 4, catalog.StatusCompleted)
	got, err := s.ActiveBackup(ctx(t), tn)
	if err != nil || got.BackupID != running.BackupID || got.Status != catalog.StatusRunning || got.ETag == "" {
		t.Fatalf("ActiveBackup = %+v, %v; want the running %s with an ETag", got, err, running.BackupID)
	}
	queued := mk(tn, 5, catalog.StatusQueued)
	if got, err = s.ActiveBackup(ctx(t), tn); err != nil || got.BackupID != queued.BackupID {
		t.Fatalf("ActiveBackup = %+v, %v; want the newest active, %s", got, err, queued.BackupID)
	}
}

func testBackupListInvalidToken(t *testing.T, s catalog.Store) {
	for _, tok := range []string{"x", "not base64!", catalog.EncodeToken("../../etc"), "djEu"} {
		_, err := s.ListBackups(ctx(t), tenant(t), catalog.ListOptions{ContinuationToken: tok})
		if !errors.Is(err, catalog.ErrInvalidToken) || errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Fatalf("token %q: got %v, want ErrInvalidToken", tok, err)
		}
	}
}

func testStaleBackups(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	now := base.Add(24 * time.Hour)
	mk := func(status catalog.Status, started, heartbeat time.Time) *catalog.Backup {
		b := catalog.NewBackup(tn, catalog.ReasonSchedule, base)
		b.Status, b.StartedAt, b.HeartbeatAt = status, started, heartbeat
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	started := now.Add(-3 * time.Hour)
	stale := mk(catalog.StatusRunning, started, now.Add(-time.Hour))
	// A retryable failure clears the heartbeat so a redelivery takes over at
	// once; if no redelivery comes, the start time says how long ago the row
	// last showed life.
	cleared := mk(catalog.StatusRunning, started, time.Time{})
	mk(catalog.StatusRunning, now.Add(-time.Minute), time.Time{}) // cleared, but just started
	mk(catalog.StatusRunning, started, now.Add(-time.Second))     // fresh
	mk(catalog.StatusCompleted, started, now.Add(-2*time.Hour))   // done
	mk(catalog.StatusQueued, time.Time{}, time.Time{})            // not started
	all, err := s.StaleBackups(ctx(t), now.Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, b := range all {
		if b.Tenant == tn {
			mine = append(mine, b.BackupID)
		}
	}
	want := []string{stale.BackupID, cleared.BackupID}
	slices.Sort(want)
	slices.Sort(mine)
	if !reflect.DeepEqual(mine, want) {
		t.Fatalf("stale backups of the tenant: %v, want %v", mine, want)
	}
}

// testQueuedBackups: the forgotten-job sweep's query finds queued rows by
// how long they have waited: since the request, the last resend, or a
// delayed retry's RetryAt, whichever is latest.
func testQueuedBackups(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	now := base.Add(24 * time.Hour)
	old := now.Add(-3 * time.Hour)
	mk := func(status catalog.Status, requested time.Time, set func(b *catalog.Backup)) *catalog.Backup {
		b := catalog.NewBackup(tn, catalog.ReasonManual, requested)
		b.Status = status
		if set != nil {
			set(b)
		}
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	forgotten := mk(catalog.StatusQueued, old, nil)
	resentLongAgo := mk(catalog.StatusQueued, old, func(b *catalog.Backup) { b.ResentAt = now.Add(-time.Hour) })
	retryPast := mk(catalog.StatusQueued, old, func(b *catalog.Backup) { b.RetryAt = now.Add(-time.Hour) })
	mk(catalog.StatusQueued, now.Add(-time.Minute), nil)                                              // fresh
	mk(catalog.StatusQueued, old, func(b *catalog.Backup) { b.ResentAt = now.Add(-time.Minute) })     // just resent
	mk(catalog.StatusQueued, old, func(b *catalog.Backup) { b.RetryAt = now.Add(time.Minute) })       // waits for its retry
	mk(catalog.StatusRunning, old, func(b *catalog.Backup) { b.StartedAt, b.HeartbeatAt = old, old }) // stale, not queued
	mk(catalog.StatusCompleted, old, nil)
	mk(catalog.StatusFailed, old, nil)
	all, err := s.QueuedBackups(ctx(t), now.Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, b := range all {
		if b.Tenant == tn {
			if b.ETag == "" {
				t.Fatalf("queued row %s has no ETag: it could not be updated", b.BackupID)
			}
			mine = append(mine, b.BackupID)
		}
	}
	want := []string{forgotten.BackupID, resentLongAgo.BackupID, retryPast.BackupID}
	slices.Sort(want)
	slices.Sort(mine)
	if !reflect.DeepEqual(mine, want) {
		t.Fatalf("queued backups of the tenant: %v, want %v", mine, want)
	}
}

func testRestoreLifecycle(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	r := catalog.NewRestore(tn, catalog.NewID(base), "", catalog.ModeReplace, false, base)
	if r.TargetTenant != tn {
		t.Fatalf("target defaults to %q, want the source tenant %q", r.TargetTenant, tn)
	}
	if err := s.CreateRestore(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	if err := r.Start("w1", base.Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	p := catalog.Progress{Records: 10, Files: 2, Bytes: 1 << 33}
	if err := r.SetProgress(p, base.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRestore(ctx(t), tn, r.RestoreID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress != p || got.State != catalog.RestoreRunning || got.ETag != r.ETag {
		t.Fatalf("progress read back: %+v", got)
	}
	if err := got.Fail(base.Add(time.Minute), errcode.Detail{Code: errcode.IntegrityCheckFailed, Message: "Chunk 3 failed authentication."}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), got); err != nil {
		t.Fatal(err)
	}
	dry := catalog.NewRestore(tn, catalog.NewID(base), "acme-sandbox", "", true, base)
	if err := s.CreateRestore(ctx(t), dry); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*catalog.Restore{got, dry} {
		back, err := s.GetRestore(ctx(t), tn, want.RestoreID)
		if err != nil {
			t.Fatal(err)
		}
		w := want.Clone()
		w.Normalize()
		if !reflect.DeepEqual(back, w) {
			t.Fatalf("restore read back differs:\n got %+v\nwant %+v", back, w)
		}
	}
}

func testRestoreErrors(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	r := catalog.NewRestore(tn, catalog.NewID(base), "", catalog.ModeMerge, false, base)
	if err := s.CreateRestore(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRestore(ctx(t), r.Clone()); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("duplicate restore: got %v, want ErrExists", err)
	}
	if _, err := s.GetRestore(ctx(t), tn, catalog.NewID(base)); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("missing restore: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetRestore(ctx(t), tenant(t), r.RestoreID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("restore of another tenant: got %v, want ErrNotFound", err)
	}
	stale := r.Clone()
	if err := r.Start("w1", base, false); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	if err := stale.Start("w2", base, false); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), stale); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("stale restore update: got %v, want ErrConflict", err)
	}
	missing := catalog.NewRestore(tn, catalog.NewID(base), "", catalog.ModeMerge, false, base)
	missing.ETag = r.ETag
	if err := s.UpdateRestore(ctx(t), missing); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("update of a missing restore: got %v, want ErrNotFound", err)
	}
}

func testRestoreList(t *testing.T, s catalog.Store) {
	tn, other := tenant(t), tenant(t)
	var ids []string // oldest first
	for i := range 5 {
		at := base.Add(time.Duration(i) * time.Hour)
		r := catalog.NewRestore(tn, catalog.NewID(at), "", catalog.ModeMerge, i%2 == 0, at)
		if err := s.CreateRestore(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RestoreID)
	}
	if err := s.CreateRestore(ctx(t), catalog.NewRestore(other, catalog.NewID(base), "", catalog.ModeMerge, false, base.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	// A row changed after creation is listed as it is now.
	first, err := s.GetRestore(ctx(t), tn, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start("w1", base.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRestore(ctx(t), first); err != nil {
		t.Fatal(err)
	}
	var got []string
	var sizes []int
	token := ""
	for range 10 {
		page, err := s.ListRestores(ctx(t), tn, catalog.ListOptions{MaxResults: 2, ContinuationToken: token})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Restores))
		for _, r := range page.Restores {
			if r.Tenant != tn || r.ETag == "" {
				t.Fatalf("listed row %+v: wrong tenant or no ETag", r)
			}
			if r.RestoreID == first.RestoreID && (r.State != catalog.RestoreRunning || r.Attempt != "w1") {
				t.Fatalf("listed row %+v, want the updated one", r)
			}
			got = append(got, r.RestoreID)
		}
		if token = page.ContinuationToken; token == "" {
			break
		}
	}
	want := make([]string, len(ids))
	for i, id := range ids {
		want[len(ids)-1-i] = id
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(sizes, []int{2, 2, 1}) {
		t.Fatalf("listing: pages %v ids %v, want pages [2 2 1] ids %v", sizes, got, want)
	}
	page, err := s.ListRestores(ctx(t), tn, catalog.ListOptions{MaxResults: 5})
	if err != nil || len(page.Restores) != 5 || page.ContinuationToken != "" {
		t.Fatalf("page of exactly 5: %d rows, token %q, %v", len(page.Restores), page.ContinuationToken, err)
	}
	page, err = s.ListRestores(ctx(t), tenant(t), catalog.ListOptions{})
	if err != nil || len(page.Restores) != 0 || page.ContinuationToken != "" {
		t.Fatalf("empty tenant: %+v, %v", page, err)
	}
}

func testRestoreListInvalidToken(t *testing.T, s catalog.Store) {
	for _, tok := range []string{"x", "not base64!", catalog.EncodeToken("../../etc"), "djEu"} {
		_, err := s.ListRestores(ctx(t), tenant(t), catalog.ListOptions{ContinuationToken: tok})
		if !errors.Is(err, catalog.ErrInvalidToken) || errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Fatalf("token %q: got %v, want ErrInvalidToken", tok, err)
		}
	}
}

func testStaleRestores(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	now := base.Add(24 * time.Hour)
	mk := func(state catalog.RestoreState, started, heartbeat time.Time) *catalog.Restore {
		r := catalog.NewRestore(tn, catalog.NewID(base), "", catalog.ModeReplace, false, base)
		r.State, r.StartedAt, r.HeartbeatAt = state, started, heartbeat
		if err := s.CreateRestore(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := now.Add(-2 * time.Hour)
	stale := mk(catalog.RestoreRunning, old, now.Add(-time.Hour))
	cleared := mk(catalog.RestoreRunning, old, time.Time{})        // heartbeat cleared for a retry that never came
	mk(catalog.RestoreRunning, old, now.Add(-time.Second))         // long, but alive
	mk(catalog.RestoreRunning, now.Add(-time.Minute), time.Time{}) // just restarted
	mk(catalog.RestoreSucceeded, old, old)                         // done
	mk(catalog.RestoreFailed, old, old)                            // done
	mk(catalog.RestoreQueued, time.Time{}, time.Time{})            // not started
	all, err := s.StaleRestores(ctx(t), now.Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, r := range all {
		if r.Tenant == tn {
			if r.ETag == "" {
				t.Fatalf("stale row %s has no ETag: it could not be updated", r.RestoreID)
			}
			mine = append(mine, r.RestoreID)
		}
	}
	slices.Sort(mine)
	want := []string{stale.RestoreID, cleared.RestoreID}
	slices.Sort(want)
	if !reflect.DeepEqual(mine, want) {
		t.Fatalf("stale restores of the tenant: %v, want %v", mine, want)
	}
}

func testQueuedRestores(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	now := base.Add(24 * time.Hour)
	old := now.Add(-2 * time.Hour)
	mk := func(state catalog.RestoreState, requested, resent time.Time) *catalog.Restore {
		r := catalog.NewRestore(tn, catalog.NewID(base), "", catalog.ModeReplace, false, requested)
		r.State, r.ResentAt = state, resent
		if state != catalog.RestoreQueued {
			r.StartedAt, r.HeartbeatAt = old, old
		}
		if err := s.CreateRestore(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	forgotten := mk(catalog.RestoreQueued, old, time.Time{})
	resentLongAgo := mk(catalog.RestoreQueued, old, now.Add(-time.Hour))
	mk(catalog.RestoreQueued, now.Add(-time.Minute), time.Time{}) // fresh
	mk(catalog.RestoreQueued, old, now.Add(-time.Minute))         // just resent
	mk(catalog.RestoreRunning, old, time.Time{})                  // stale, not queued
	mk(catalog.RestoreSucceeded, old, time.Time{})
	mk(catalog.RestoreFailed, old, time.Time{})
	all, err := s.QueuedRestores(ctx(t), now.Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, r := range all {
		if r.Tenant == tn {
			if r.ETag == "" {
				t.Fatalf("queued row %s has no ETag: it could not be updated", r.RestoreID)
			}
			if !r.ResentAt.IsZero() && !r.ResentAt.Equal(now.Add(-time.Hour).Truncate(time.Millisecond)) {
				t.Fatalf("ResentAt read back as %s", r.ResentAt)
			}
			mine = append(mine, r.RestoreID)
		}
	}
	slices.Sort(mine)
	want := []string{forgotten.RestoreID, resentLongAgo.RestoreID}
	slices.Sort(want)
	if !reflect.DeepEqual(mine, want) {
		t.Fatalf("queued restores of the tenant: %v, want %v", mine, want)
	}
}

// testBackupSoftDelete: the soft-delete fields round-trip, and lists hide
// deleted and purged backups unless IncludeDeleted.
func testBackupSoftDelete(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	var ids []string
	for i := range 4 {
		b := fullBackup(tn)
		b.BackupID = catalog.NewID(base.Add(time.Duration(i) * time.Hour))
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.BackupID)
	}
	del, err := s.GetBackup(ctx(t), tn, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := del.SoftDelete(base.Add(time.Hour), base.Add(15*24*time.Hour), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBackup(ctx(t), del); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBackup(ctx(t), tn, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	equalBackup(t, got, del)
	pur, err := s.GetBackup(ctx(t), tn, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := pur.SoftDelete(base, base.Add(time.Hour), catalog.DeletedByRetention); err != nil {
		t.Fatal(err)
	}
	if err := pur.StartPurge(base.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := pur.Purge(base.Add(3 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBackup(ctx(t), pur); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetBackup(ctx(t), tn, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	equalBackup(t, got, pur)

	list := func(opts catalog.ListOptions) []string {
		var out []string
		for {
			page, err := s.ListBackups(ctx(t), tn, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range page.Backups {
				out = append(out, b.BackupID)
			}
			if page.ContinuationToken == "" {
				return out
			}
			opts.ContinuationToken = page.ContinuationToken
		}
	}
	if got, want := list(catalog.ListOptions{MaxResults: 1}), []string{ids[3], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("list = %v, want %v (deleted and purged hidden)", got, want)
	}
	if got, want := list(catalog.ListOptions{MaxResults: 2, IncludeDeleted: true}), []string{ids[3], ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("list with deleted = %v, want %v", got, want)
	}
}

// testScanBackups: every row of the tenant, ascending, and no other
// tenant's; BackupTenants names each tenant with rows once.
func testScanBackups(t *testing.T, s catalog.Store) {
	tn := tenant(t)
	other := tn + "-x" // sorts right after tn: the partition skip must not lose it
	var want []string
	for i := range 5 {
		b := catalog.NewBackup(tn, catalog.ReasonSchedule, base.Add(time.Duration(i)*time.Minute))
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b.BackupID)
	}
	if err := s.CreateBackup(ctx(t), catalog.NewBackup(other, catalog.ReasonSchedule, base)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.ScanBackups(ctx(t), tn, catalog.ScanOptions{}, func(b *catalog.Backup) error {
		if b.Tenant != tn {
			t.Errorf("row of tenant %s", b.Tenant)
		}
		got = append(got, b.BackupID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("scan = %v, want %v", got, want)
	}
	var tenants []string
	if err := s.BackupTenants(ctx(t), func(x string) error {
		tenants = append(tenants, x)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(tenants) {
		t.Errorf("tenants not sorted: %v", tenants)
	}
	if len(slices.Compact(slices.Clone(tenants))) != len(tenants) || !slices.Contains(tenants, tn) || !slices.Contains(tenants, other) {
		t.Errorf("tenants = %v, want %s and %s once each", tenants, tn, other)
	}
}
