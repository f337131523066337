package mem_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/mem"
)

// TestKeeper: the keeper's writes share the row's ETag; a write by anyone
// else makes the next one a takeover, which is sticky and cancels a beating
// attempt.
func TestKeeper(t *testing.T) {
	ctx := t.Context()
	s := mem.New()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := catalog.NewBackup("acme", catalog.ReasonManual, now)
	if err := s.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	row, err := s.GetBackup(ctx, "acme", b.BackupID)
	if err != nil {
		t.Fatal(err)
	}
	k := catalog.NewKeeper(row, s.UpdateBackup)
	if err := k.Update(ctx, func(b *catalog.Backup) error { return b.Start("a1", now, false) }); err != nil {
		t.Fatal(err)
	}
	// Two updates in a row: the keeper tracks the new ETag itself.
	if err := k.Update(ctx, func(b *catalog.Backup) error { return b.Heartbeat(now.Add(time.Second)) }); err != nil {
		t.Fatal(err)
	}
	snap := k.Snapshot()
	snap.Attempt = "changed"
	if k.Snapshot().Attempt != "a1" {
		t.Fatal("Snapshot is not a copy")
	}

	// Another attempt takes the row over.
	other, _ := s.GetBackup(ctx, "acme", b.BackupID)
	if err := other.Start("a2", now.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBackup(ctx, other); err != nil {
		t.Fatal(err)
	}
	beatCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Beat(beatCtx, time.Millisecond, func(b *catalog.Backup) error { return b.Heartbeat(now) }, cancel, func(err error) { t.Errorf("warn: %v", err) })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Beat did not stop after the takeover")
	}
	if !errors.Is(context.Cause(beatCtx), catalog.ErrTakenOver) {
		t.Fatalf("attempt cancelled with %v, want ErrTakenOver", context.Cause(beatCtx))
	}
	if err := k.Update(ctx, func(*catalog.Backup) error { return nil }); !errors.Is(err, catalog.ErrTakenOver) {
		t.Fatalf("update after takeover = %v, want ErrTakenOver (sticky)", err)
	}
	if got, _ := s.GetBackup(ctx, "acme", b.BackupID); got.Attempt != "a2" {
		t.Fatalf("the takeover was overwritten: attempt %q", got.Attempt)
	}
}
