package restore

import (
	"context"
	"errors"
	"fmt"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
)

// SweepReport counts what one [Service.Sweep] did.
type SweepReport struct {
	// Stale running restores found, and how many of them were marked
	// failed (the others changed meanwhile: an attempt was still alive).
	Stale, Failed int
	// Forgotten queued restores had waited longer than SweepGrace;
	// Resent of them got their job message again.
	Forgotten, Resent int
}

// Sweep enqueues again the jobs of queued restores waiting longer than
// SweepGrace, and marks failed the running restores whose attempt stopped proving
// alive more than SweepGrace ago: the last delivery of their message
// crashed (or went to the poison queue), so nothing will ever finish them
// and their GET would say "running" forever. The write is conditional on
// the row read, so an attempt that beat meanwhile keeps its restore. It
// scans every tenant's restores: call it from a timer, not per request.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	var err error
	now := s.now()
	rep.Stale, rep.Failed, err = job.Stale[*catalog.Restore]{Kind: "restore", List: s.o.Catalog.StaleRestores, Write: s.o.Catalog.UpdateRestore,
		Cause: func(r *catalog.Restore) errcode.Detail {
			target := "was not changed"
			if !r.DryRun {
				target = "may be partly restored"
			}
			return errcode.Detail{Code: errcode.Internal, Message: fmt.Sprintf(
				"The restore stopped (its worker was interrupted) and was not resumed, so it did not finish; tenant %s %s. Start the restore again.",
				r.TargetTenant, target)}
		}}.Fail(ctx, now, now.Add(-s.o.SweepGrace), s.log)
	// A queued restore whose message was never written (Start's process
	// killed between the row and the message) would stay queued forever;
	// a duplicate of a late message is harmless (the row decides).
	var rerr error
	rep.Forgotten, rep.Resent, rerr = job.Forgotten[*catalog.Restore]{Kind: "restore", List: s.o.Catalog.QueuedRestores,
		Write: s.o.Catalog.UpdateRestore, Enqueue: s.enqueue}.Resend(ctx, now, now.Add(-s.o.SweepGrace), s.log)
	return rep, errors.Join(err, rerr)
}

// RunSweep is [Service.Sweep] with its report logged, for running beside
// another timer's work, e.g. BackupScheduler's or ByokMonitor's.
func (s *Service) RunSweep(ctx context.Context) error {
	rep, err := s.Sweep(ctx)
	s.log.InfoContext(ctx, "restore sweep run", "stale", rep.Stale, "failed", rep.Failed, "forgotten", rep.Forgotten, "resent", rep.Resent)
	return err
}
