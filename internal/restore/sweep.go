package restore

import (
	"context"
	"errors"
	"fmt"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// SweepReport counts what one [Service.Sweep] did.
type SweepReport struct {
	// Stale running restores found, and how many of them were marked
	// failed (the others changed meanwhile: an attempt was still alive).
	Stale, Failed int
}

// Sweep marks failed the running restores whose attempt stopped proving
// alive more than SweepGrace ago: the last delivery of their message
// crashed (or went to the poison queue), so nothing will ever finish them
// and their GET would say "running" forever. The write is conditional on
// the row read, so an attempt that beat meanwhile keeps its restore. It
// scans every tenant's restores: call it from a timer, not per request.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	now := s.now()
	stale, err := s.o.Catalog.StaleRestores(ctx, now.Add(-s.o.SweepGrace))
	if err != nil {
		return rep, fmt.Errorf("failed to list stale restores: %w", err)
	}
	rep.Stale = len(stale)
	var errs []error
	for _, r := range stale {
		target := "was not changed"
		if !r.DryRun {
			target = "may be partly restored"
		}
		cause := errcode.Detail{Code: errcode.Internal, Message: fmt.Sprintf(
			"The restore stopped (its worker was interrupted) and was not resumed, so it did not finish; tenant %s %s. Start the restore again.",
			r.TargetTenant, target)}
		if err := r.Fail(now, cause); err != nil {
			continue
		}
		if err := s.o.Catalog.UpdateRestore(ctx, r); err != nil {
			if !errors.Is(err, catalog.ErrConflict) {
				errs = append(errs, fmt.Errorf("failed to mark stale restore %s/%s failed: %w", r.Tenant, r.RestoreID, err))
			}
			continue
		}
		rep.Failed++
		s.log.WarnContext(ctx, "stale running restore marked failed", "tenant", r.Tenant, "restoreId", r.RestoreID,
			"targetTenant", r.TargetTenant, "lastAlive", r.LastAlive(), "attempts", r.Attempts)
	}
	return rep, errors.Join(errs...)
}

// RunSweep is [Service.Sweep] with its report logged, for running beside
// another timer's work, e.g. BackupScheduler's or ByokMonitor's.
func (s *Service) RunSweep(ctx context.Context) error {
	rep, err := s.Sweep(ctx)
	s.log.InfoContext(ctx, "restore sweep run", "stale", rep.Stale, "failed", rep.Failed)
	return err
}
