package api

import (
	"context"
	"errors"
	"time"

	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/restore"
)

// BackupScheduler is the BackupScheduler timer function: the schedule slot
// is the host's UtcNow, so a late or repeated firing still names the slot
// the host meant. A nil svc leaves the function unwired.
func BackupScheduler(svc *backup.Service) server.TimerFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, req *invoke.TimerRequest) error {
		var now time.Time
		if req != nil {
			now = req.Sys.UtcNow
		}
		return svc.RunScheduler(ctx, now)
	}
}

// ByokMonitor is the 15-minute ByokMonitor timer function: the BYOK
// monitor, the restore sweep, which fails restores whose worker died
// after its last delivery so they don't stay "running" and resends the
// jobs of forgotten queued ones, and the backups' resend of forgotten
// queued jobs (which the daily scheduler alone would leave blocking a
// tenant's POST …/backups for up to a day). Any may be nil.
func ByokMonitor(monitor *byok.Service, backups *backup.Service, restores *restore.Service) server.TimerFunc {
	if monitor == nil && backups == nil && restores == nil {
		return nil
	}
	return func(ctx context.Context, _ *invoke.TimerRequest) error {
		var merr, berr, serr error
		if monitor != nil {
			_, merr = monitor.Monitor(ctx)
		}
		if backups != nil {
			berr = backups.RunResend(ctx)
		}
		if restores != nil {
			serr = restores.RunSweep(ctx)
		}
		return errors.Join(merr, berr, serr)
	}
}

// BackupRetention is the BackupRetention timer function (API.md §6): the
// retention run and the sweep. A nil svc leaves the function unwired.
func BackupRetention(svc *backup.Service) server.TimerFunc {
	if svc == nil {
		return nil
	}
	return func(ctx context.Context, _ *invoke.TimerRequest) error {
		return svc.RunRetention(ctx)
	}
}
