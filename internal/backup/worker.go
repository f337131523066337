package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// ErrBusy is returned (wrapped) when a job can't run now: another attempt
// of the same backup is alive, or another job of the tenant holds the
// lease. The invocation fails so the host redelivers the message later;
// nothing is lost. It is the job lifecycle's [job.ErrBusy].
var ErrBusy = job.ErrBusy

// finalWriteTimeout bounds the writes that run even when the invocation's
// context has ended.
const finalWriteTimeout = job.FinalWriteTimeout

// RunJob is the BackupWorker entry point: the edge decodes the queue
// message and calls it with the delivery's details. It runs [Service.Run].
func (s *Service) RunJob(ctx context.Context, job jobqueue.BackupJob, d jobqueue.Delivery) error {
	return s.Run(ctx, job, d.DequeueCount)
}

// Run processes one delivery of job; dequeueCount is the message's
// DequeueCount (1 on the first delivery). A nil return acknowledges the
// message; an error makes the host redeliver it. Redelivery never makes a
// second backup: the row decides (see the package doc and internal/job).
func (s *Service) Run(ctx context.Context, bj jobqueue.BackupJob, dequeueCount int) error {
	if err := bj.Validate(); err != nil {
		s.log.ErrorContext(ctx, "backup job is invalid; it will end in the poison queue", "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The backup job is invalid.")
	}
	log := s.log.With("tenant", bj.Tenant, "backupId", bj.BackupID, "dequeueCount", dequeueCount)
	return job.Run(ctx, s.jobOptions(), s.jobSpec(bj, log), dequeueCount, log)
}

func (s *Service) jobOptions() job.Options {
	o := s.o
	return job.Options{Leases: o.Leases, LeaseTTL: o.LeaseTTL, HeartbeatEvery: o.HeartbeatEvery, StaleAfter: o.StaleAfter, MaxDequeueCount: o.MaxDequeueCount, Now: s.now}
}

// jobSpec is the backup's part of the job lifecycle: adopt a rowless job,
// wait for a delayed retry, make the blobs, commit the key, counts and
// manifest, requeue on a transient customer key failure.
func (s *Service) jobSpec(bj jobqueue.BackupJob, log *slog.Logger) job.Spec[*catalog.Backup] {
	var start time.Time
	// The progress is the heartbeat: no write of its own (issue 14 point 6).
	prog := &progress{}
	return job.Spec[*catalog.Backup]{
		Kind: "backup",
		Load: func(ctx context.Context) (*catalog.Backup, error) {
			row, err := s.o.Catalog.GetBackup(ctx, bj.Tenant, bj.BackupID)
			if !errors.Is(err, catalog.ErrNotFound) {
				return row, err
			}
			// Our own scheduler and POST create the row before the message; a
			// message without one was enqueued by another program (API.md §1
			// message format). Create the row from it, for a tenant that exists:
			// the backupId keys it, so redelivery still makes one backup.
			row, err = s.adoptJob(ctx, bj, log)
			if err == nil {
				log.InfoContext(ctx, "backup job without a catalog row: row created from the message")
			}
			return row, err
		},
		Write: s.o.Catalog.UpdateBackup,
		Lease: func(b *catalog.Backup) (string, string) { return b.Tenant, b.BackupID },
		Beat:  func(b *catalog.Backup, now time.Time) error { return b.SetProgress(prog.snapshot(), now) },
		// A requeued backup (waiting out a transient key failure) has a
		// delayed message due at RetryAt; a delivery well before it is a
		// duplicate (this message's redelivery), and running it would
		// start a second chain of retries. Half the delay absorbs clock
		// skew between this host and the queue service.
		Waiting: func(b *catalog.Backup) bool {
			return !b.RetryAt.IsZero() && s.now().Before(b.RetryAt.Add(-s.retryDelay()/2))
		},
		Work: func(ctx context.Context, a *job.Attempt[*catalog.Backup]) (func(*catalog.Backup) error, error) {
			start = time.Now()
			row := a.Keeper.Snapshot()
			layout, err := blobstore.NewLayout(row.Tenant, row.BackupID, a.ID)
			if err != nil {
				return nil, job.Permanent(err)
			}
			// Earlier attempts' directories are left alone: only a row that names
			// them abandoned (committed or failed) lets the sweep delete them, so a
			// row created for an id whose blobs outlived their row deletes nothing.
			res, err := s.pipeline(ctx, layout, row.FirstAttemptAt, prog, a.Log)
			if err != nil {
				return nil, err
			}
			return func(b *catalog.Backup) error {
				b.KeySource = res.key.source
				b.KeyID = res.key.wrapped.KeyID
				// Recorded so the restore can reach the key after BYOK is turned off.
				b.EntraTenantID = res.key.entraTenant
				b.FallbackReason = res.key.fallback
				b.Records, b.Files, b.Bytes = res.counts.Records, res.counts.Files, res.counts.Bytes
				b.StoredBytes, b.Chunks = res.storedBytes, res.chunks
				b.Streams = res.streams
				b.ManifestBlob = res.manifestBlob
				b.ManifestDigest = res.manifestDigest
				return b.Complete(s.now())
			}, nil
		},
		Recover: func(ctx context.Context, a *job.Attempt[*catalog.Backup], cause error) (bool, error) {
			var wait *keyWaitError
			if !errors.As(cause, &wait) {
				return false, nil
			}
			return s.requeue(ctx, a, wait)
		},
		Committed: func(ctx context.Context, a *job.Attempt[*catalog.Backup], b *catalog.Backup) {
			a.Log.InfoContext(ctx, "backup completed", "keySource", string(b.KeySource), "keyId", b.KeyID,
				"fallback", b.FallbackReason != nil, "records", b.Records, "files", b.Files, "bytes", b.Bytes,
				"storedBytes", b.StoredBytes, "chunks", b.Chunks, "durationMs", time.Since(start).Milliseconds())
		},
		// A final failure deletes the attempt's own directory at once; the
		// blobs of earlier attempts are the sweep's (after FailedRetention).
		Abandon: func(ctx context.Context, a *job.Attempt[*catalog.Backup]) {
			b := a.Keeper.Snapshot()
			layout, err := blobstore.NewLayout(b.Tenant, b.BackupID, a.ID)
			if err != nil {
				return
			}
			if _, err := s.blobs.DeletePrefix(ctx, layout.Prefix()); err != nil {
				a.Log.WarnContext(ctx, "failed to delete the failed attempt's blobs; the sweep deletes them", "err", err)
			}
		},
	}
}

// requeue makes a backup whose customer key failed transiently wait
// (API.md §5): a new message for the job, hidden for the retry delay,
// then the row back to queued with lastError saying why, and the current
// delivery acknowledged. The new message starts with a fresh dequeue
// count, so the wait is bounded by the grace, not by maxDequeueCount.
// The message is enqueued before the row is written: a row that names a
// RetryAt always has a message coming. handled = false leaves the failure
// to the lifecycle's retry rule (the host's own redelivery is the retry).
func (s *Service) requeue(ctx context.Context, a *job.Attempt[*catalog.Backup], wait *keyWaitError) (handled bool, err error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	b := a.Keeper.Snapshot()
	now := s.now()
	// The attempt after the grace has run out falls back (or fails).
	delay := max(min(s.retryDelay(), wait.deadline.Sub(now)), time.Second)
	bj := jobqueue.BackupJob{Tenant: b.Tenant, BackupID: b.BackupID, Reason: b.Reason, RequestedAt: b.RequestedAt}
	dq, ok := s.o.Queue.(DelayedQueue)
	if !ok {
		return false, nil
	}
	if err := dq.EnqueueAfter(wctx, s.o.QueueName, bj, delay); err != nil {
		return false, fmt.Errorf("failed to enqueue the delayed retry (%w) after: %w", err, wait)
	}
	then := "it is made with the platform key"
	if !wait.fallback {
		then = "it fails, since fallback to the platform key is turned off"
	}
	why := errcode.Detail{Code: wait.why.Code, Message: fmt.Sprintf(
		"The customer key could not be used for now (%s: %s) The backup is waiting and will retry at %s; if the key is still unusable at %s, %s.",
		wait.why.Code, wait.why.Message, now.Add(delay).UTC().Format(time.RFC3339), wait.deadline.UTC().Format(time.RFC3339), then)}
	if err := a.Keeper.Update(wctx, func(b *catalog.Backup) error { return b.Requeue(now.Add(delay), why) }); err != nil {
		if errors.Is(err, catalog.ErrTakenOver) {
			// Another attempt owns the row; the delayed message finds it.
			return true, nil
		}
		// The delayed message exists, but the row still says running:
		// let the host redeliver this one too (the row decides).
		return true, fmt.Errorf("failed to requeue the backup row: %w", err)
	}
	a.Log.InfoContext(ctx, "backup requeued to wait out a transient customer key failure",
		"code", string(wait.why.Code), "retryIn", delay, "graceEnds", wait.deadline)
	return true, nil
}

// retryDelay is how long a backup waiting out a transient key failure
// stays queued: TransientRetryDelay, or a tenth of the grace within
// [5 s, 2 min] (90 s for the default 15 min grace), so about ten tries fit
// in the grace without hammering a throttling vault.
func (s *Service) retryDelay() time.Duration {
	if s.o.TransientRetryDelay > 0 {
		return s.o.TransientRetryDelay
	}
	return min(max(s.o.TransientGrace/10, 5*time.Second), 2*time.Minute)
}

// adoptJob creates the queued row for a job that arrived without one, if
// the tenant has a Tenants row. A concurrent delivery that created it
// first wins; its row is returned. A job for a tenant with neither row
// writes nothing and fails every delivery, so it ends in the poison queue:
// a typo in a hand-made message must not create backups (and a catalog
// partition) for a tenant that doesn't exist.
func (s *Service) adoptJob(ctx context.Context, bj jobqueue.BackupJob, log *slog.Logger) (*catalog.Backup, error) {
	known := false
	if s.o.Tenants != nil {
		var err error
		if known, err = s.o.Tenants.Exists(ctx, bj.Tenant); err != nil {
			return nil, fmt.Errorf("failed to look up the tenant of a backup job without a catalog row: %w", err)
		}
	}
	if !known {
		log.ErrorContext(ctx, "backup job for an unknown tenant (no Tenants row, no catalog row): nothing written; it will end in the poison queue")
		return nil, errcode.New(errcode.NotFound,
			"The backup job names tenant %s, which has no Tenants row and no catalog row for the backup: nothing was backed up.", bj.Tenant)
	}
	row := catalog.NewBackup(bj.Tenant, bj.Reason, s.now())
	row.BackupID = bj.BackupID
	if !bj.RequestedAt.IsZero() {
		row.RequestedAt = bj.RequestedAt.UTC()
	}
	row.Normalize()
	err := s.o.Catalog.CreateBackup(ctx, row)
	if errors.Is(err, catalog.ErrExists) {
		return s.o.Catalog.GetBackup(ctx, bj.Tenant, bj.BackupID)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to create the row of backup %s: %w", bj.BackupID, err)
	}
	return s.o.Catalog.GetBackup(ctx, bj.Tenant, bj.BackupID)
}
