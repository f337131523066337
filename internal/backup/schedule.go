package backup

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/tenants"
)

// SchedulerReport counts one scheduler run; every tenant row ends up in
// exactly one of Enqueued, AlreadyDone, Failed, Disabled or Invalid.
type SchedulerReport struct {
	Enabled, Disabled, Invalid int
	// Enqueued tenants got a queued row and a message in this run.
	Enqueued int
	// AlreadyDone tenants already had this slot's backup past queued (the
	// timer fired twice for one slot).
	AlreadyDone int
	Failed      int
	// Forgotten queued backups had waited longer than SweepGrace; Resent
	// of them got their job message again ([Service.ResendForgotten]).
	Forgotten, Resent int
	Sweep             SweepReport
}

// RunScheduler is the BackupScheduler timer's work, for the slot at now
// (the host's UtcNow; zero means the service's clock): one `backup-jobs`
// message per tenant with backups enabled, the resend of forgotten queued
// backups, then the garbage sweep. It
// fails only if the tenants could not be listed or some tenant could not
// be scheduled, so the failure is visible in the host.
func (s *Service) RunScheduler(ctx context.Context, now time.Time) error {
	if now.IsZero() {
		now = s.now()
	}
	rep, err := s.Schedule(ctx, now)
	// Judged at the slot's time, like the slot: the rows this run made
	// are fresh, whatever the service's clock says.
	var rerr error
	rep.Forgotten, rep.Resent, rerr = s.ResendForgotten(ctx, now)
	sweep, serr := s.Sweep(ctx)
	rep.Sweep = sweep
	s.log.InfoContext(ctx, "backup scheduler run", "enabled", rep.Enabled, "disabled", rep.Disabled,
		"invalid", rep.Invalid, "enqueued", rep.Enqueued, "alreadyDone", rep.AlreadyDone, "failed", rep.Failed,
		"sweptBackups", sweep.DeletedBackups, "sweptAttempts", sweep.DeletedAttempts, "sweptBlobs", sweep.DeletedBlobs,
		"forgotten", rep.Forgotten, "resent", rep.Resent, "staleFailed", sweep.StaleFailed, "orphanBackups", sweep.Orphans, "suspectBackups", sweep.Suspect,
		"breakerTenants", sweep.BreakerTenants)
	return errors.Join(err, rerr, serr)
}

// Schedule enqueues the backup of every tenant with backups enabled for the
// schedule slot at or before now. Ids are deterministic per tenant and
// slot, so a second run for the same slot finds the rows and enqueues again
// only those still queued (a run that died between row and message);
// redelivery of a duplicate message is harmless.
func (s *Service) Schedule(ctx context.Context, now time.Time) (SchedulerReport, error) {
	if s.o.Tenants == nil {
		return SchedulerReport{}, errors.New("backup: the scheduler needs Options.Tenants")
	}
	slot := s.slot(now)
	var (
		rep      SchedulerReport
		counts   tenants.Counts
		listErr  error
		failures []error
		mu       sync.Mutex
		wg       sync.WaitGroup
		// Unbuffered: the listing stays at most a page ahead of the
		// workers, so memory is a page and the pool, whatever the count.
		work = make(chan string)
	)
	for range s.o.ScheduleParallelism {
		wg.Go(func() {
			for tenant := range work {
				queued, err := s.enqueueScheduled(ctx, tenant, slot, now)
				if err != nil {
					s.log.ErrorContext(ctx, "failed to schedule a tenant's backup", "tenant", tenant, "err", err)
				}
				mu.Lock()
				switch {
				case err != nil:
					rep.Failed++
					if len(failures) < 10 {
						failures = append(failures, fmt.Errorf("tenant %s: %w", tenant, err))
					}
				case queued:
					rep.Enqueued++
				default:
					rep.AlreadyDone++
				}
				mu.Unlock()
			}
		})
	}
	for tenant, err := range s.o.Tenants.Enabled(ctx, &counts) {
		if err != nil {
			listErr = fmt.Errorf("failed to list the tenants: %w", err)
			break
		}
		work <- tenant
	}
	close(work)
	wg.Wait()
	rep.Enabled, rep.Disabled, rep.Invalid = counts.Enabled, counts.Disabled, counts.Invalid
	if counts.Invalid > 0 {
		s.log.WarnContext(ctx, "tenant rows with an invalid id or BackupEnabled were skipped", "invalid", counts.Invalid, "ids", counts.InvalidIDs)
	}
	if len(failures) > 0 {
		failures = append(failures, fmt.Errorf("%d of %d tenants could not be scheduled", rep.Failed, counts.Enabled))
	}
	return rep, errors.Join(append(failures, listErr)...)
}

// enqueueScheduled creates the slot's queued row (if absent) and enqueues
// its job; queued is false when the row had already moved on.
func (s *Service) enqueueScheduled(ctx context.Context, tenant string, slot, now time.Time) (queued bool, err error) {
	b := &catalog.Backup{BackupID: ScheduledID(tenant, slot), Tenant: tenant, Status: catalog.StatusQueued,
		Reason: catalog.ReasonSchedule, Job: catalog.Job{RequestedAt: now}}
	if err := s.o.Catalog.CreateBackup(ctx, b); err != nil {
		if !errors.Is(err, catalog.ErrExists) {
			return false, fmt.Errorf("failed to create the backup row: %w", err)
		}
		if b, err = s.o.Catalog.GetBackup(ctx, tenant, b.BackupID); err != nil {
			return false, fmt.Errorf("failed to read the existing backup row: %w", err)
		}
		if b.Status != catalog.StatusQueued {
			return false, nil
		}
	}
	return true, s.enqueue(ctx, b)
}

func (s *Service) enqueue(ctx context.Context, b *catalog.Backup) error {
	job := jobqueue.BackupJob{Tenant: b.Tenant, BackupID: b.BackupID, Reason: b.Reason, RequestedAt: b.RequestedAt}
	if err := s.o.Queue.Enqueue(ctx, s.o.QueueName, job); err != nil {
		return fmt.Errorf("failed to enqueue the backup job: %w", err)
	}
	return nil
}

// Request starts an on-demand backup of tenant: a queued row, then its
// message. If the message can't be queued the row is marked failed, so it
// never waits forever.
func (s *Service) Request(ctx context.Context, tenant string, reason catalog.Reason) (*catalog.Backup, error) {
	// A caller that goes away between the row and its message must not
	// leave a queued row no message will ever run: the pair is written
	// whatever happens to the request.
	ctx, cancelReq := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancelReq()
	now := s.now()
	b := catalog.NewBackup(tenant, reason, now)
	if err := s.o.Catalog.CreateBackup(ctx, b); err != nil {
		return nil, errcode.Wrap(fmt.Errorf("failed to create the backup row: %w", err), errcode.ServiceUnavailable,
			"The backup could not be recorded. Try again later.")
	}
	if err := s.enqueue(ctx, b); err != nil {
		cause := errcode.Wrap(err, errcode.ServiceUnavailable, "The backup could not be queued. Try again later.")
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
		defer cancel()
		if ferr := b.Fail(s.now(), job.Detail(cause)); ferr == nil {
			if uerr := s.o.Catalog.UpdateBackup(wctx, b); uerr != nil {
				s.log.ErrorContext(ctx, "failed to mark an unqueued backup failed", "tenant", tenant, "backupId", b.BackupID, "err", uerr)
			}
		}
		return nil, cause
	}
	return b, nil
}

// slot is the schedule occurrence at or before now (the minute when no
// schedule is set). Timers fire at or just after their occurrence, so this
// names the occurrence being run, whichever instance runs it and however
// often.
func (s *Service) slot(now time.Time) time.Time {
	now = now.UTC()
	minute := now.Truncate(time.Minute)
	if s.o.Schedule == nil {
		return minute
	}
	// Walk occurrences of the last day; a schedule denser than
	// maxSlotSteps a day falls back to the minute.
	const maxSlotSteps = 2000
	var last time.Time
	t := s.o.Schedule.Next(now.Add(-24 * time.Hour))
	for i := 0; i < maxSlotSteps && !t.IsZero() && !t.After(now); i++ {
		last = t
		t = s.o.Schedule.Next(t)
	}
	if last.IsZero() || !t.IsZero() && !t.After(now) {
		return minute
	}
	return last.UTC()
}

var idSuffix = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ScheduledID is the deterministic backup id of tenant's scheduled backup
// for slot: the catalog's id shape (time to the millisecond, then 16 base32
// characters), the suffix derived from the tenant and the slot instead of
// drawn at random.
func ScheduledID(tenant string, slot time.Time) string {
	slot = slot.UTC().Truncate(time.Millisecond)
	h := sha256.Sum256([]byte("byok-backup scheduled backup\x00" + tenant + "\x00" + slot.Format(time.RFC3339Nano)))
	return slot.Format("20060102T150405.000Z") + "-" + idSuffix.EncodeToString(h[:10])
}
