package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/lease"
)

// errTakenOver: the row changed under a running attempt (another attempt
// restarted it); this attempt must stop and write nothing more.
var errTakenOver = catalog.ErrTakenOver

// RunJob is the RestoreWorker entry point: it runs the restore or
// verification named by one `restore-jobs` message, which the edge has
// decoded. A nil return acks the message; an error makes the host deliver
// it again (and finally poison it). It never runs a restore that already
// ended.
func (s *Service) RunJob(ctx context.Context, job jobqueue.RestoreJob, d jobqueue.Delivery) error {
	if err := job.Validate(); err != nil {
		s.log.ErrorContext(ctx, "restore job is invalid; it will end in the poison queue", "messageId", d.MessageID, "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The restore job message is malformed.")
	}
	log := s.log.With("tenant", job.Tenant, "restoreId", job.RestoreID, "dequeueCount", d.DequeueCount)
	final := d.DequeueCount >= s.o.MaxDequeueCount
	return s.attempt(ctx, job, final, log)
}

func (s *Service) attempt(ctx context.Context, job jobqueue.RestoreJob, final bool, log *slog.Logger) error {
	r, err := s.o.Catalog.GetRestore(ctx, job.Tenant, job.RestoreID)
	if errors.Is(err, catalog.ErrNotFound) {
		log.WarnContext(ctx, "restore job names no restore; dropped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read the restore: %w", err)
	}
	now := s.now()
	switch r.State {
	case catalog.RestoreSucceeded, catalog.RestoreFailed:
		log.InfoContext(ctx, "restore already ended; redelivered message acknowledged", "state", r.State)
		return nil
	case catalog.RestoreRunning:
		if now.Sub(r.HeartbeatAt) < s.o.StaleAfter {
			return fmt.Errorf("restore %s is running in another attempt (heartbeat %s); retry later", r.RestoreID, r.HeartbeatAt.Format(time.RFC3339))
		}
		log.WarnContext(ctx, "restarting a restore whose attempt stopped", "heartbeatAt", r.HeartbeatAt, "attempts", r.Attempts)
	}

	// The target's lease first: a busy target must not flip the row to running.
	// Dry runs take it too: a verification downloads and decrypts the whole
	// backup, so it counts against the tenant's one job at a time (its
	// target is the source unless the request named another).
	l, err := s.o.Leases.Acquire(ctx, r.TargetTenant, "restore:"+r.RestoreID, s.o.LeaseTTL)
	if err != nil {
		if errors.Is(err, lease.ErrHeld) {
			err = retryable(errcode.Wrap(err, errcode.Conflict,
				"Another backup or restore of tenant %s was running, so the restore could not start. Start it again once that has finished.", r.TargetTenant))
		}
		return s.failOrRetry(ctx, r, err, final, log)
	}
	held, stop := s.o.Leases.Hold(ctx, l, s.o.LeaseTTL, s.o.LeaseTTL/3)
	defer func() {
		_ = stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.o.Leases.Release(rctx, l); err != nil {
			log.WarnContext(ctx, "failed to release the target lease", "err", err)
		}
	}()
	ctx = held

	retry := r.State == catalog.RestoreRunning
	if err := r.Start(newAttempt(now), now, retry); err != nil {
		return fmt.Errorf("restore %s can't start: %w", r.RestoreID, err)
	}
	if err := s.o.Catalog.UpdateRestore(ctx, r); err != nil {
		// ErrConflict: another delivery started it first; this one retries
		// and then sees it running or ended.
		return fmt.Errorf("failed to mark the restore running: %w", err)
	}
	log = log.With("attempt", r.Attempt)
	log.InfoContext(ctx, "restore started", "backupId", r.BackupID, "targetTenant", r.TargetTenant, "mode", r.Mode, "dryRun", r.DryRun)

	k := catalog.NewKeeper(r, s.o.Catalog.UpdateRestore)
	prog := &progress{}
	wctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		k.Beat(wctx, s.o.ProgressEvery, func(r *catalog.Restore) error { return r.SetProgress(prog.snapshot(), s.now()) }, cancel, func(err error) {
			log.WarnContext(ctx, "failed to persist restore progress; retrying at the next beat", "err", err)
		})
	})
	err = s.execute(wctx, r, prog, log)
	cancel(nil)
	wg.Wait()
	if c := context.Cause(wctx); err != nil && errors.Is(c, errTakenOver) {
		err = c
	}

	if err == nil {
		err = k.Update(ctx, func(r *catalog.Restore) error {
			if e := r.SetProgress(prog.snapshot(), s.now()); e != nil {
				return e
			}
			return r.Succeed(s.now())
		})
		if err != nil {
			return fmt.Errorf("failed to record the restore's success: %w", err)
		}
		p := k.Snapshot().Progress
		log.InfoContext(ctx, "restore succeeded", "records", p.Records, "files", p.Files, "bytes", p.Bytes)
		return nil
	}
	if errors.Is(err, errTakenOver) {
		log.WarnContext(ctx, "restore attempt stopped: taken over by another attempt", "err", err)
		return nil
	}
	if ctx.Err() != nil {
		// The invocation ended (host shutdown, timeout, lost lease): write
		// nothing; the redelivery restarts the row once its heartbeat is stale.
		return fmt.Errorf("restore interrupted: %w", errors.Join(context.Cause(ctx), err))
	}
	return s.failOrRetryKept(ctx, k, prog, err, final, log)
}

// execute loads the backup row and runs the pipeline.
func (s *Service) execute(ctx context.Context, r *catalog.Restore, prog *progress, log *slog.Logger) error {
	b, err := s.o.Catalog.GetBackup(ctx, r.Tenant, r.BackupID)
	if errors.Is(err, catalog.ErrNotFound) {
		return errcode.Wrap(err, errcode.BackupNotFound, "Backup %s of tenant %s no longer exists, so it can't be restored.", r.BackupID, r.Tenant)
	}
	if err != nil {
		return fmt.Errorf("failed to read the backup: %w", err)
	}
	if !b.Restorable() {
		return errcode.New(errcode.BackupIncomplete, "Backup %s of tenant %s is %s, not completed, so it can't be restored.", r.BackupID, r.Tenant, b.Status)
	}
	return s.run(ctx, r, b, prog, log)
}

// failOrRetry handles a failure before the row was started.
func (s *Service) failOrRetry(ctx context.Context, r *catalog.Restore, err error, final bool, log *slog.Logger) error {
	if isRetryable(err) && !final {
		log.WarnContext(ctx, "restore could not start; the message is retried", "code", errcode.CodeOf(err), "err", err)
		return err
	}
	if ferr := r.Fail(s.now(), detail(err)); ferr != nil {
		return errors.Join(err, ferr)
	}
	if uerr := s.o.Catalog.UpdateRestore(ctx, r); uerr != nil {
		return fmt.Errorf("failed to record the restore's failure: %w", errors.Join(uerr, err))
	}
	log.ErrorContext(ctx, "restore failed", "code", errcode.CodeOf(err), "err", err)
	return nil
}

// failOrRetryKept handles a failure of a started attempt: a permanent one,
// or any on the last delivery, marks the row failed; a retryable one
// clears the heartbeat so the redelivered message restarts it at once.
func (s *Service) failOrRetryKept(ctx context.Context, k *rowKeeper, prog *progress, err error, final bool, log *slog.Logger) error {
	if isRetryable(err) && !final {
		log.WarnContext(ctx, "restore attempt failed; the message is retried", "code", errcode.CodeOf(err), "err", err)
		uerr := k.Update(ctx, func(r *catalog.Restore) error {
			if e := r.SetProgress(prog.snapshot(), s.now()); e != nil {
				return e
			}
			r.HeartbeatAt = time.Time{}
			return nil
		})
		return errors.Join(err, uerr)
	}
	uerr := k.Update(ctx, func(r *catalog.Restore) error {
		if e := r.SetProgress(prog.snapshot(), s.now()); e != nil {
			return e
		}
		return r.Fail(s.now(), detail(err))
	})
	if uerr != nil {
		return fmt.Errorf("failed to record the restore's failure: %w", errors.Join(uerr, err))
	}
	log.ErrorContext(ctx, "restore failed", "code", errcode.CodeOf(err), "err", err)
	return nil
}

// newAttempt names one worker invocation's attempt.
func newAttempt(now time.Time) string { return catalog.NewID(now) }

// rowKeeper serialises one attempt's writes to its Restores row.
type rowKeeper = catalog.Keeper[*catalog.Restore]
