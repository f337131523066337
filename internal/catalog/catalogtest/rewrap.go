package catalogtest

import (
	"errors"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// testScanBackupsByStatus: ScanBackups visits the tenant's backups of the given
// statuses, oldest first, and KeysOnly still gives the key fields.
func testScanBackupsByStatus(t *testing.T, s catalog.Store) {
	sc, ok := s.(catalog.BackupScanner)
	if !ok {
		t.Fatal("the store is not a catalog.BackupScanner")
	}
	tn := tenant(t)
	var want []string
	for i := range 5 {
		b := fullBackup(tn)
		b.BackupID = catalog.NewID(base.Add(time.Duration(i) * time.Minute))
		if i == 2 {
			b.Status = catalog.StatusFailed
		} else {
			want = append(want, b.BackupID)
		}
		if err := s.CreateBackup(ctx(t), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBackup(ctx(t), fullBackup(tenant(t))); err != nil { // another tenant
		t.Fatal(err)
	}
	for _, keysOnly := range []bool{false, true} {
		var got []string
		err := sc.ScanBackups(ctx(t), tn, catalog.ScanOptions{Statuses: []catalog.Status{catalog.StatusCompleted}, KeysOnly: keysOnly}, func(b *catalog.Backup) error {
			if b.KeySource != keywrap.Platform || b.KeyID == "" || b.Status != catalog.StatusCompleted {
				t.Fatalf("scanned row %+v", b)
			}
			got = append(got, b.BackupID)
			return nil
		})
		if err != nil || len(got) != len(want) {
			t.Fatalf("scan (keysOnly %v) = %v, %v; want %v", keysOnly, got, err, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("scan order %v, want %v", got, want)
			}
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := sc.ScanBackups(ctx(t), tn, catalog.ScanOptions{}, func(*catalog.Backup) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("callback error: %v after %d rows", err, n)
	}
	c, err := catalog.CountKeys(ctx(t), sc, tn, "other")
	if err != nil || c != (catalog.KeyCounts{Platform: 4}) {
		t.Fatalf("CountKeys = %+v, %v", c, err)
	}
}

// RunRewraps is the conformance suite of catalog.RewrapStore.
func RunRewraps(t *testing.T, open func(t *testing.T) catalog.RewrapStore) {
	t.Run("Lifecycle", func(t *testing.T) {
		s := open(t)
		tn := tenant(t)
		if _, err := s.ActiveRewrap(ctx(t), tn); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("ActiveRewrap on none = %v", err)
		}
		r := catalog.NewRewrap(tn, keywrap.Customer, true, false, base)
		if err := s.CreateRewrap(ctx(t), r); err != nil || r.ETag == "" {
			t.Fatalf("create: %v (etag %q)", err, r.ETag)
		}
		if err := s.CreateRewrap(ctx(t), r.Clone()); !errors.Is(err, catalog.ErrExists) {
			t.Fatalf("second create = %v", err)
		}
		if a, err := s.ActiveRewrap(ctx(t), tn); err != nil || a.RewrapID != r.RewrapID {
			t.Fatalf("ActiveRewrap = %v, %v", a, err)
		}
		stale := r.Clone()
		if err := r.Start("a1", base.Add(time.Second), false); err != nil {
			t.Fatal(err)
		}
		r.Progress = catalog.RewrapProgress{Total: 9, Done: 4, Skipped: 3, Failed: 2}
		r.Failures = []catalog.RewrapFailure{{BackupID: "b1", Code: errcode.CustomerKeyUnavailable, Message: "gone"}}
		if err := s.UpdateRewrap(ctx(t), r); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateRewrap(ctx(t), stale); !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("stale update = %v", err)
		}
		got, err := s.GetRewrap(ctx(t), tn, r.RewrapID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != catalog.RewrapRunning || got.Progress != r.Progress || len(got.Failures) != 1 || got.Failures[0] != r.Failures[0] ||
			!got.IncludePlatformBackups || got.To != keywrap.Customer || got.Attempt != "a1" || got.ETag != r.ETag {
			t.Fatalf("read back %+v", got)
		}
		if err := got.Succeed(base.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateRewrap(ctx(t), got); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActiveRewrap(ctx(t), tn); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("ActiveRewrap after success = %v", err)
		}
		if _, err := s.GetRewrap(ctx(t), tn, catalog.NewID(base)); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("get missing = %v", err)
		}
	})
	t.Run("ListNewestFirst", func(t *testing.T) {
		s := open(t)
		tn := tenant(t)
		var ids []string
		for i := range 3 {
			r := catalog.NewRewrap(tn, keywrap.Platform, false, true, base.Add(time.Duration(i)*time.Hour))
			if err := s.CreateRewrap(ctx(t), r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.RewrapID)
		}
		p, err := s.ListRewraps(ctx(t), tn, catalog.ListOptions{MaxResults: 2})
		if err != nil || len(p.Rewraps) != 2 || p.Rewraps[0].RewrapID != ids[2] || p.Rewraps[1].RewrapID != ids[1] || p.ContinuationToken == "" {
			t.Fatalf("page 1 = %+v, %v", p, err)
		}
		p, err = s.ListRewraps(ctx(t), tn, catalog.ListOptions{MaxResults: 2, ContinuationToken: p.ContinuationToken})
		if err != nil || len(p.Rewraps) != 1 || p.Rewraps[0].RewrapID != ids[0] || p.ContinuationToken != "" {
			t.Fatalf("page 2 = %+v, %v", p, err)
		}
	})
}
