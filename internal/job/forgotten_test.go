package job_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/mem"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/testing/logtest"
)

// TestForgottenResend: the queued rows waiting past the grace get their
// message again and the resend recorded; the next run within the grace
// resends nothing (a backlog gets one duplicate per grace); a row claimed
// by a concurrent sweep or started meanwhile is skipped; a failed enqueue
// is reported.
func TestForgottenResend(t *testing.T) {
	ctx := t.Context()
	cat := mem.New()
	now := t0.Add(24 * time.Hour)
	grace := time.Hour
	mk := func(requested time.Time) *catalog.Backup {
		b := catalog.NewBackup("acme", catalog.ReasonManual, requested)
		if err := cat.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	lost := mk(now.Add(-2 * grace))
	raced := mk(now.Add(-2 * grace))
	failing := mk(now.Add(-2 * grace))
	fresh := mk(now.Add(-grace / 2))

	var sent []string
	var logs logtest.Buffer
	f := job.Forgotten[*catalog.Backup]{Kind: "backup", List: cat.QueuedBackups,
		Write: func(ctx context.Context, b *catalog.Backup) error {
			if b.BackupID == raced.BackupID {
				// Another sweep (or the worker) wrote the row first.
				cur, err := cat.GetBackup(ctx, b.Tenant, b.BackupID)
				if err != nil {
					return err
				}
				if err := cur.Start("w", now, false); err != nil {
					return err
				}
				if err := cat.UpdateBackup(ctx, cur); err != nil {
					return err
				}
			}
			return cat.UpdateBackup(ctx, b)
		},
		Enqueue: func(_ context.Context, b *catalog.Backup) error {
			if b.BackupID == failing.BackupID {
				return errors.New("queue down (test)")
			}
			sent = append(sent, b.BackupID)
			return nil
		}}
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	found, resent, err := f.Resend(ctx, now, now.Add(-grace), log)
	if found != 3 || resent != 1 || err == nil || !slices.Equal(sent, []string{lost.BackupID}) {
		t.Fatalf("first run: found %d, resent %d, err %v, sent %v; want 3, 1, the queue error, [%s]", found, resent, err, sent, lost.BackupID)
	}
	b, err := cat.GetBackup(ctx, "acme", lost.BackupID)
	if err != nil || !b.ResentAt.Equal(now) || b.Status != catalog.StatusQueued {
		t.Fatalf("resent row = %+v, %v; want queued with ResentAt %s", b, err, now)
	}
	if b, _ := cat.GetBackup(ctx, "acme", fresh.BackupID); !b.ResentAt.IsZero() {
		t.Fatalf("a fresh row was resent: %+v", b)
	}

	// Within the grace of the resend: nothing again, not even the row
	// whose enqueue failed (its resend was recorded first).
	sent = nil
	later := now.Add(grace / 2)
	if found, resent, err = f.Resend(ctx, later, later.Add(-grace), log); found != 0 || resent != 0 || err != nil || sent != nil {
		t.Fatalf("run within the grace: found %d, resent %d, err %v, sent %v", found, resent, err, sent)
	}
	// A grace after the resend, the still-queued rows are resent again.
	later = now.Add(grace + time.Minute)
	if found, resent, err = f.Resend(ctx, later, later.Add(-grace), log); found != 3 || resent != 2 || err == nil {
		t.Fatalf("run after the grace: found %d, resent %d, err %v, sent %v", found, resent, err, sent)
	}
	if !slices.Contains(sent, fresh.BackupID) || !slices.Contains(sent, lost.BackupID) {
		t.Fatalf("sent %v, want the lost and the (now old) fresh row", sent)
	}
}
