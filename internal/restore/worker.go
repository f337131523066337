package restore

import (
	"context"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// RunJob is the RestoreWorker entry point: it runs the restore or
// verification named by one `restore-jobs` message, which the edge has
// decoded. A nil return acks the message; an error makes the host deliver
// it again (and finally poison it). It never runs a restore that already
// ended.
func (s *Service) RunJob(ctx context.Context, rj jobqueue.RestoreJob, d jobqueue.Delivery) error {
	if err := rj.Validate(); err != nil {
		s.log.ErrorContext(ctx, "restore job is invalid; it will end in the poison queue", "messageId", d.MessageID, "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The restore job message is malformed.")
	}
	log := s.log.With("tenant", rj.Tenant, "restoreId", rj.RestoreID, "dequeueCount", d.DequeueCount)
	return job.Run(ctx, s.jobOptions(), s.jobSpec(rj, log), d.DequeueCount, log)
}

func (s *Service) jobOptions() job.Options {
	o := s.o
	return job.Options{Leases: o.Leases, LeaseTTL: o.LeaseTTL, HeartbeatEvery: o.ProgressEvery, StaleAfter: o.StaleAfter, MaxDequeueCount: o.MaxDequeueCount, Now: s.now}
}

// jobSpec is the restore's part of the job lifecycle: the target's lease,
// the progress persisted with every write, the pipeline, success.
func (s *Service) jobSpec(rj jobqueue.RestoreJob, log *slog.Logger) job.Spec[*catalog.Restore] {
	prog := &progress{}
	setProgress := func(r *catalog.Restore, now time.Time) error { return r.SetProgress(prog.snapshot(), now) }
	return job.Spec[*catalog.Restore]{
		Kind: "restore",
		Load: func(ctx context.Context) (*catalog.Restore, error) {
			return s.o.Catalog.GetRestore(ctx, rj.Tenant, rj.RestoreID)
		},
		Write: s.o.Catalog.UpdateRestore,
		// The target's lease. Dry runs take it too: a verification downloads
		// and decrypts the whole backup, so it counts against the tenant's one
		// job at a time (its target is the source unless the request named
		// another).
		Lease: func(r *catalog.Restore) (string, string) { return r.TargetTenant, "restore:" + r.RestoreID },
		// The progress is the heartbeat.
		Beat:   setProgress,
		Settle: setProgress,
		Work: func(ctx context.Context, a *job.Attempt[*catalog.Restore]) (func(*catalog.Restore) error, error) {
			r := a.Keeper.Snapshot()
			a.Log.InfoContext(ctx, "restore running", "backupId", r.BackupID, "targetTenant", r.TargetTenant, "mode", r.Mode, "dryRun", r.DryRun)
			if err := s.execute(ctx, r, prog, a.Log); err != nil {
				return nil, err
			}
			return func(r *catalog.Restore) error { return r.Succeed(s.now()) }, nil
		},
		Committed: func(ctx context.Context, a *job.Attempt[*catalog.Restore], r *catalog.Restore) {
			p := r.Progress
			a.Log.InfoContext(ctx, "restore succeeded", "records", p.Records, "files", p.Files, "bytes", p.Bytes)
		},
	}
}
