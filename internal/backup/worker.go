package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/lease"
)

// ErrBusy is returned (wrapped) when a job can't run now: another attempt
// of the same backup is alive, or another backup of the tenant holds the
// lease. The invocation fails so the host redelivers the message later;
// nothing is lost.
var ErrBusy = errors.New("backup: busy, retry later")

// finalWriteTimeout bounds the write that records a failure, which runs
// even when the invocation's context has ended.
const finalWriteTimeout = 30 * time.Second

// Worker is the BackupWorker queue function (server.QueueFunc): it decodes
// a `backup-jobs` message and runs [Service.Run]. A malformed message is
// logged and acknowledged, since redelivery can't fix it.
func (s *Service) Worker(ctx context.Context, req *invoke.QueueRequest) error {
	job, err := jobqueue.DecodeBackupJob(req.Message.Text)
	if err != nil {
		// Fail the invocation: after maxDequeueCount deliveries the host moves
		// the message to backup-jobs-poison, where an operator sees it.
		// Acknowledging it would lose it without a trace.
		s.log.ErrorContext(ctx, "backup job message is malformed; it will end in the poison queue", "messageId", req.Message.ID, "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The backup job message is malformed.")
	}
	return s.Run(ctx, job, req.Message.DequeueCount)
}

// Run processes one delivery of job; dequeueCount is the message's
// DequeueCount (1 on the first delivery). A nil return acknowledges the
// message; an error makes the host redeliver it. Redelivery never makes a
// second backup: the row decides (see the package doc).
func (s *Service) Run(ctx context.Context, job jobqueue.BackupJob, dequeueCount int) error {
	if err := job.Validate(); err != nil {
		s.log.ErrorContext(ctx, "backup job is invalid; it will end in the poison queue", "err", err)
		return errcode.Wrap(err, errcode.InvalidRequest, "The backup job is invalid.")
	}
	log := s.log.With("tenant", job.Tenant, "backupId", job.BackupID, "dequeueCount", dequeueCount)
	final := dequeueCount >= s.o.MaxDequeueCount
	row, err := s.o.Catalog.GetBackup(ctx, job.Tenant, job.BackupID)
	if errors.Is(err, catalog.ErrNotFound) {
		// Our own scheduler and POST create the row before the message; a
		// message without one was enqueued by another program (contract §1
		// message format). Create the row from it, for a tenant that exists:
		// the backupId keys it, so redelivery still makes one backup.
		row, err = s.adoptJob(ctx, job, log)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "backup job without a catalog row: row created from the message")
	}
	if err != nil {
		return fmt.Errorf("failed to read the backup row: %w", err)
	}
	switch row.Status {
	case catalog.StatusQueued:
		// A requeued backup (waiting out a transient key failure) has a
		// delayed message due at RetryAt; a delivery well before it is a
		// duplicate (this message's redelivery), and running it would
		// start a second chain of retries. Half the delay absorbs clock
		// skew between this host and the queue service.
		if !row.RetryAt.IsZero() && s.now().Before(row.RetryAt.Add(-s.retryDelay()/2)) {
			log.InfoContext(ctx, "backup waits for its delayed retry; this early delivery is acknowledged", "retryAt", row.RetryAt)
			return nil
		}
	case catalog.StatusCompleted, catalog.StatusFailed:
		log.InfoContext(ctx, "backup already finished; redelivered job acknowledged", "status", string(row.Status))
		return nil
	case catalog.StatusRunning:
		if age := s.now().Sub(row.HeartbeatAt); age < s.o.StaleAfter {
			if final {
				log.WarnContext(ctx, "backup is running in another attempt; its last redelivery is acknowledged", "attempt", row.Attempt)
				return nil
			}
			return fmt.Errorf("%w: attempt %s of backup %s is running (heartbeat %s ago)", ErrBusy, row.Attempt, row.BackupID, age.Round(time.Second))
		}
		log.WarnContext(ctx, "taking over a backup whose attempt stopped", "staleAttempt", row.Attempt, "heartbeatAt", row.HeartbeatAt)
	}

	l, err := s.o.Leases.Acquire(ctx, job.Tenant, job.BackupID, s.o.LeaseTTL)
	if err != nil {
		var held *lease.HeldError
		if !errors.As(err, &held) {
			return fmt.Errorf("failed to acquire the tenant lease: %w", err)
		}
		if !final {
			return fmt.Errorf("%w: backup %s of the tenant holds the lease until %s", ErrBusy, held.Holder, held.Expires.Format(time.RFC3339))
		}
		cause := errcode.Wrap(err, errcode.Conflict,
			"The backup did not run: another backup of this tenant (%s) was still running after %d attempts to start this one. Start a new backup once it has finished.",
			held.Holder, dequeueCount)
		log.WarnContext(ctx, "backup refused: the tenant's lease stayed held", "holder", held.Holder)
		return s.failRow(ctx, row, cause, log)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
		defer cancel()
		if err := s.o.Leases.Release(rctx, l); err != nil && !errors.Is(err, lease.ErrLost) {
			log.WarnContext(ctx, "failed to release the tenant lease; it expires by itself", "err", err)
		}
	}()
	held, stopHold := s.o.Leases.Hold(ctx, l, s.o.LeaseTTL, s.o.LeaseTTL/3)
	defer stopHold()
	return s.attempt(held, row, final, log)
}

// attempt runs one attempt while holding the tenant lease: start the row,
// clean the prefix, make the blobs, commit.
func (s *Service) attempt(ctx context.Context, row *catalog.Backup, final bool, log *slog.Logger) error {
	attemptID := newAttemptID()
	retry := row.Status != catalog.StatusQueued
	k := catalog.NewKeeper(row, s.o.Catalog.UpdateBackup)
	if err := k.Update(ctx, func(b *catalog.Backup) error { return b.Start(attemptID, s.now(), retry) }); err != nil {
		if errors.Is(err, errTakenOver) {
			return fmt.Errorf("%w: another attempt started the backup first: %w", ErrBusy, err)
		}
		return fmt.Errorf("failed to mark the backup running: %w", err)
	}
	log = log.With("attempt", attemptID)
	log.InfoContext(ctx, "backup started", "retry", retry)
	start := time.Now()

	layout, err := blobstore.NewLayout(row.Tenant, row.BackupID, attemptID)
	if err != nil {
		return s.finish(ctx, k, err, true, "", log)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		k.Beat(wctx, s.o.HeartbeatEvery, func(b *catalog.Backup) error { return b.Heartbeat(s.now()) }, cancel, func(err error) {
			log.WarnContext(ctx, "failed to record the backup's heartbeat", "err", err)
		})
	}()
	stopHeartbeat := func() { cancel(context.Canceled); <-hbDone }

	// Earlier attempts' directories are left alone: only a row that names
	// them abandoned (committed or failed) lets the sweep delete them, so a
	// row created for an id whose blobs outlived their row deletes nothing.

	res, err := s.pipeline(wctx, layout, k.Snapshot().FirstAttemptAt, log)
	// The pipeline may have finished just as the lease or the row was lost;
	// never commit then. Read the cause before stopHeartbeat cancels wctx.
	var interrupted error
	if wctx.Err() != nil {
		interrupted = context.Cause(wctx)
	}
	stopHeartbeat()
	if errors.Is(interrupted, errTakenOver) {
		log.WarnContext(ctx, "backup attempt stopped: another attempt owns the backup now", "err", interrupted)
		return fmt.Errorf("%w: %w", ErrBusy, interrupted)
	}
	if errors.Is(interrupted, lease.ErrLost) {
		interrupted = errcode.Wrap(interrupted, errcode.Conflict,
			"The backup stopped because the tenant's backup lease was lost to another backup of the tenant. It is retried.")
	}
	var wait *keyWaitError
	if interrupted == nil && errors.As(err, &wait) {
		return s.requeue(ctx, k, wait, final, layout.Prefix(), log)
	}
	if err == nil {
		err = interrupted
	}
	if err != nil {
		return s.finish(ctx, k, err, final || permanent(err), layout.Prefix(), log)
	}

	err = k.Update(ctx, func(b *catalog.Backup) error {
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
	})
	if err != nil {
		if errors.Is(err, errTakenOver) {
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		// The blobs are complete but not committed: the retry redoes them.
		return fmt.Errorf("failed to commit the backup row: %w", err)
	}
	b := k.Snapshot()
	log.InfoContext(ctx, "backup completed", "keySource", string(b.KeySource), "keyId", b.KeyID,
		"fallback", b.FallbackReason != nil, "records", b.Records, "files", b.Files, "bytes", b.Bytes,
		"storedBytes", b.StoredBytes, "chunks", b.Chunks, "durationMs", time.Since(start).Milliseconds())
	return nil
}

// finish records a failed attempt. A failure that is final (permanent, or
// on the message's last delivery) marks the row failed and acknowledges the
// message; any other leaves the row running with its heartbeat cleared,
// so the redelivered message takes it over at once, and fails the
// invocation so that the host redelivers it. own is the attempt directory
// this invocation wrote ("" = none): a final failure deletes it at once,
// the blobs of earlier attempts are the sweep's (after FailedRetention).
func (s *Service) finish(ctx context.Context, k *rowKeeper, cause error, final bool, own string, log *slog.Logger) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	if final {
		d := detail(cause)
		log.ErrorContext(ctx, "backup failed", "code", string(d.Code), "err", cause)
		if err := k.Update(wctx, func(b *catalog.Backup) error { return b.Fail(s.now(), d) }); err != nil {
			return fmt.Errorf("failed to mark the backup failed (%w) after: %w", err, cause)
		}
		if own != "" {
			if _, err := s.blobs.DeletePrefix(wctx, own); err != nil {
				log.WarnContext(ctx, "failed to delete the failed attempt's blobs; the sweep deletes them", "err", err)
			}
		}
		return nil
	}
	log.WarnContext(ctx, "backup attempt failed; it is retried", "err", cause)
	if err := k.Update(wctx, func(b *catalog.Backup) error { b.HeartbeatAt = time.Time{}; return nil }); err != nil {
		log.WarnContext(ctx, "failed to release the backup row for the retry; it is taken over once stale", "err", err)
	}
	return cause
}

// requeue makes a backup whose customer key failed transiently wait
// (contract §5): a new message for the job, hidden for the retry delay,
// then the row back to queued with lastError saying why, and the current
// delivery acknowledged. The new message starts with a fresh dequeue
// count, so the wait is bounded by the grace, not by maxDequeueCount.
// The message is enqueued before the row is written: a row that names a
// RetryAt always has a message coming.
func (s *Service) requeue(ctx context.Context, k *rowKeeper, wait *keyWaitError, final bool, own string, log *slog.Logger) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	b := k.Snapshot()
	now := s.now()
	// The attempt after the grace has run out falls back (or fails).
	delay := max(min(s.retryDelay(), wait.deadline.Sub(now)), time.Second)
	job := jobqueue.BackupJob{Tenant: b.Tenant, BackupID: b.BackupID, Reason: b.Reason, RequestedAt: b.RequestedAt}
	dq, ok := s.o.Queue.(DelayedQueue)
	if !ok {
		return s.finish(ctx, k, wait, final, own, log)
	}
	if err := dq.EnqueueAfter(wctx, s.o.QueueName, job, delay); err != nil {
		// The host's own redelivery is the retry then.
		return s.finish(ctx, k, fmt.Errorf("failed to enqueue the delayed retry (%w) after: %w", err, wait), final, own, log)
	}
	then := "it is made with the platform key"
	if !wait.fallback {
		then = "it fails, since fallback to the platform key is turned off"
	}
	why := errcode.Detail{Code: wait.why.Code, Message: fmt.Sprintf(
		"The customer key could not be used for now (%s: %s) The backup is waiting and will retry at %s; if the key is still unusable at %s, %s.",
		wait.why.Code, wait.why.Message, now.Add(delay).UTC().Format(time.RFC3339), wait.deadline.UTC().Format(time.RFC3339), then)}
	if err := k.Update(wctx, func(b *catalog.Backup) error { return b.Requeue(now.Add(delay), why) }); err != nil {
		if errors.Is(err, errTakenOver) {
			// Another attempt owns the row; the delayed message finds it.
			return nil
		}
		// The delayed message exists, but the row still says running:
		// let the host redeliver this one too (the row decides).
		return fmt.Errorf("failed to requeue the backup row: %w", err)
	}
	log.InfoContext(ctx, "backup requeued to wait out a transient customer key failure",
		"code", string(wait.why.Code), "retryIn", delay, "graceEnds", wait.deadline)
	return nil
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

// failRow marks a backup that never started failed and acknowledges.
func (s *Service) failRow(ctx context.Context, row *catalog.Backup, cause error, log *slog.Logger) error {
	k := catalog.NewKeeper(row, s.o.Catalog.UpdateBackup)
	return s.finish(ctx, k, cause, true, "", log)
}

// permanent reports whether retrying can't help: the customer's own
// refusal of the platform key, or data the format can't hold.
func permanent(err error) bool {
	switch errcode.CodeOf(err) {
	case errcode.CustomerKeyUnavailable, errcode.InvalidRequest:
		return true
	}
	return false
}

// newAttemptID names one attempt's blob directory (blobstore.Layout).
func newAttemptID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "a" + hex.EncodeToString(b[:])
}

// adoptJob creates the queued row for a job that arrived without one, if
// the tenant has a Tenants row. A concurrent delivery that created it
// first wins; its row is returned. A job for a tenant with neither row
// writes nothing and fails every delivery, so it ends in the poison queue:
// a typo in a hand-made message must not create backups (and a catalog
// partition) for a tenant that doesn't exist.
func (s *Service) adoptJob(ctx context.Context, job jobqueue.BackupJob, log *slog.Logger) (*catalog.Backup, error) {
	known := false
	if s.o.Tenants != nil {
		var err error
		if known, err = s.o.Tenants.Exists(ctx, job.Tenant); err != nil {
			return nil, fmt.Errorf("failed to look up the tenant of a backup job without a catalog row: %w", err)
		}
	}
	if !known {
		log.ErrorContext(ctx, "backup job for an unknown tenant (no Tenants row, no catalog row): nothing written; it will end in the poison queue")
		return nil, errcode.New(errcode.NotFound,
			"The backup job names tenant %s, which has no Tenants row and no catalog row for the backup: nothing was backed up.", job.Tenant)
	}
	row := catalog.NewBackup(job.Tenant, job.Reason, s.now())
	row.BackupID = job.BackupID
	if !job.RequestedAt.IsZero() {
		row.RequestedAt = job.RequestedAt.UTC()
	}
	row.Normalize()
	err := s.o.Catalog.CreateBackup(ctx, row)
	if errors.Is(err, catalog.ErrExists) {
		return s.o.Catalog.GetBackup(ctx, job.Tenant, job.BackupID)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to create the row of backup %s: %w", job.BackupID, err)
	}
	return s.o.Catalog.GetBackup(ctx, job.Tenant, job.BackupID)
}
