package backup

import (
	"context"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/job"
)

// ResendForgotten enqueues again the job of every queued backup that has
// waited longer than SweepGrace: since its request, its last resend, or
// for a backup waiting out a transient key failure its RetryAt. Request
// and the scheduler write the row before the message, so a process killed
// in between leaves a row nothing runs, and POST …/backups answers every
// later request of the tenant with it. A duplicate of a message that was
// only late is harmless (the row decides). It scans every tenant's
// backups: call it from a timer, not per request. now is the time it
// judges by (zero: the service's clock).
func (s *Service) ResendForgotten(ctx context.Context, now time.Time) (found, resent int, err error) {
	if now.IsZero() {
		now = s.now()
	}
	return job.Forgotten[*catalog.Backup]{Kind: "backup", List: s.o.Catalog.QueuedBackups, Write: s.o.Catalog.UpdateBackup,
		Enqueue: s.enqueue}.Resend(ctx, now, now.Add(-s.o.SweepGrace), s.log)
}

// RunResend is [Service.ResendForgotten] with its counts logged, for the
// 15-minute ByokMonitor timer, so a forgotten on-demand backup stops
// blocking its tenant within about SweepGrace + 15 min rather than at the
// next daily scheduler run (which resends too).
func (s *Service) RunResend(ctx context.Context) error {
	found, resent, err := s.ResendForgotten(ctx, time.Time{})
	s.log.InfoContext(ctx, "forgotten backup sweep run", "forgotten", found, "resent", resent)
	return err
}
