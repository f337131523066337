// Package job is the life of one queued job, whatever its kind (a backup, a
// restore, and the kinds to come): the services give it their row and
// their work, and it owns everything around them, once.
//
//	load the row (a row that doesn't exist: acknowledged, dropped)
//	  ended                          -> acknowledge: a redelivery never runs a job twice
//	  queued and waiting for a later delivery (Spec.Waiting) -> acknowledge
//	  running, heartbeat fresh       -> ErrBusy (retry later); on the last delivery acknowledge
//	  queued, or running but stale   -> continue (a stale attempt is taken over)
//	acquire the tenant lease
//	  held                           -> ErrBusy; on the last delivery mark failed (Conflict)
//	row -> running (ETag-conditional: a lost race is ErrBusy)
//	work, with a heartbeat every HeartbeatEvery; a taken-over row cancels it
//	  success                        -> commit (the kind's final write) -> acknowledge
//	  failure, permanent or on the last delivery -> mark failed, acknowledge
//	  failure otherwise              -> clear the heartbeat, fail the invocation:
//	                                    the redelivery takes the row over at once
//
// # The retry rule
//
// Every failure is retried, up to the queue's maxDequeueCount, unless it is
// permanent ([IsPermanent]): marked with [Permanent] where it was made, or
// carrying a code that is permanent by itself. The last delivery fails the
// row instead of leaving it for the sweep.
package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/lease"
)

// ErrBusy is returned (wrapped) when a job can't run now: another attempt
// of the same job is alive, or another job of the tenant holds the lease.
// The invocation fails so the host redelivers the message later; nothing
// is lost.
var ErrBusy = errors.New("job: busy, retry later")

// FinalWriteTimeout bounds the writes that run even when the invocation's
// context has ended: recording a failure, releasing the lease.
const FinalWriteTimeout = 30 * time.Second

// Leases keeps two jobs of one tenant from running at once;
// *lease.Manager implements it.
type Leases interface {
	Acquire(ctx context.Context, tenant, holder string, ttl time.Duration) (*lease.Lease, error)
	Hold(ctx context.Context, l *lease.Lease, ttl, every time.Duration) (held context.Context, stop func() error)
	Release(ctx context.Context, l *lease.Lease) error
}

// Options are the settings every kind shares.
type Options struct {
	Leases Leases
	// LeaseTTL is the tenant lease's lifetime, renewed every third of it.
	LeaseTTL time.Duration
	// HeartbeatEvery is how often the running row is written (Spec.Beat);
	// StaleAfter is the heartbeat age after which a running row is taken
	// over.
	HeartbeatEvery, StaleAfter time.Duration
	// MaxDequeueCount is host.json's maxDequeueCount: the delivery with
	// this count is the last one.
	MaxDequeueCount int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Spec is one kind's part of a job. Load, Write, Lease and Work are
// required.
type Spec[T catalog.Row[T]] struct {
	// Kind names the job in logs and failure messages ("backup").
	Kind string
	// Load reads the row. An error matching catalog.ErrNotFound
	// acknowledges the message (no row, nothing to run); any other fails
	// the invocation.
	Load func(ctx context.Context) (T, error)
	// Write is the store's conditional update of the row.
	Write func(ctx context.Context, row T) error
	// Lease names the tenant whose lease the job takes and the holder.
	Lease func(row T) (tenant, holder string)
	// Waiting, when set, reports that a queued row waits for a later
	// delivery (a delayed retry); this one is acknowledged.
	Waiting func(row T) bool
	// Beat is the heartbeat's change (default: row.Heartbeat).
	Beat func(row T, now time.Time) error
	// Settle, when set, is applied to the row with every write after the
	// work: commit, retry and failure (a restore's progress).
	Settle func(row T, now time.Time) error
	// Work runs one attempt. It returns the commit (the kind's final
	// change, applied after the heartbeat stopped, only if the attempt was
	// not interrupted), or an error. A nil commit with a nil error means
	// the work settled the row itself: the message is acknowledged.
	Work func(ctx context.Context, a *Attempt[T]) (commit func(row T) error, err error)
	// Recover, when set, sees a failure of an uninterrupted attempt before
	// the retry rule: handled = true ends the delivery with err (a backup's
	// requeue for a transient customer key failure); otherwise a non-nil
	// err replaces the cause the retry rule judges.
	Recover func(ctx context.Context, a *Attempt[T], cause error) (handled bool, err error)
	// Committed, when set, is called after the commit was written (to log
	// the kind's outcome).
	Committed func(ctx context.Context, a *Attempt[T], row T)
	// Abandon, when set, is called after a failure was recorded as final,
	// to delete what the attempt wrote.
	Abandon func(ctx context.Context, a *Attempt[T])
}

// Attempt is one attempt at a job, as its Work sees it.
type Attempt[T catalog.Row[T]] struct {
	// ID names the attempt (the row's Attempt; a backup's blob directory).
	ID string
	// Keeper serialises the attempt's writes to its row.
	Keeper *catalog.Keeper[T]
	// Final is true on the message's last delivery.
	Final bool
	Log   *slog.Logger
}

// Run processes one delivery of a job; dequeueCount is the message's
// DequeueCount (1 on the first delivery). A nil return acknowledges the
// message; an error makes the host redeliver it. Redelivery never runs a
// job twice: the row decides.
func Run[T catalog.Row[T]](ctx context.Context, o Options, spec Spec[T], dequeueCount int, log *slog.Logger) error {
	r := &runner[T]{o: o, spec: spec, log: log, final: dequeueCount >= o.MaxDequeueCount, deliveries: dequeueCount}
	if r.o.Now == nil {
		r.o.Now = time.Now
	}
	if r.spec.Beat == nil {
		r.spec.Beat = func(row T, now time.Time) error { return row.Heartbeat(now) }
	}
	return r.run(ctx)
}

type runner[T catalog.Row[T]] struct {
	o          Options
	spec       Spec[T]
	log        *slog.Logger
	final      bool
	deliveries int
}

func (r *runner[T]) run(ctx context.Context) error {
	kind, log := r.spec.Kind, r.log
	row, err := r.spec.Load(ctx)
	if errors.Is(err, catalog.ErrNotFound) {
		log.WarnContext(ctx, kind+" job names no catalog row; dropped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read the %s row: %w", kind, err)
	}
	j := row.JobPart()
	switch row.Phase() {
	case catalog.PhaseEnded:
		log.InfoContext(ctx, kind+" already ended; redelivered job acknowledged")
		return nil
	case catalog.PhaseQueued:
		if r.spec.Waiting != nil && r.spec.Waiting(row) {
			log.InfoContext(ctx, kind+" waits for its delayed retry; this early delivery is acknowledged")
			return nil
		}
	case catalog.PhaseRunning:
		if age := r.o.Now().Sub(j.HeartbeatAt); age < r.o.StaleAfter {
			if r.final {
				log.WarnContext(ctx, kind+" is running in another attempt; its last redelivery is acknowledged", "attempt", j.Attempt)
				return nil
			}
			_, id := row.Key()
			return fmt.Errorf("%w: attempt %s of %s %s is running (heartbeat %s ago)", ErrBusy, j.Attempt, kind, id, age.Round(time.Second))
		}
		log.WarnContext(ctx, "taking over a "+kind+" whose attempt stopped", "staleAttempt", j.Attempt, "heartbeatAt", j.HeartbeatAt, "attempts", j.Attempts)
	}

	// The lease first: a busy tenant must not flip the row to running.
	tenant, holder := r.spec.Lease(row)
	k := catalog.NewKeeper(row, r.spec.Write)
	l, err := r.o.Leases.Acquire(ctx, tenant, holder, r.o.LeaseTTL)
	if err != nil {
		var held *lease.HeldError
		if !errors.As(err, &held) {
			return r.settle(ctx, &Attempt[T]{Keeper: k, Final: r.final, Log: log}, fmt.Errorf("failed to acquire the tenant lease: %w", err))
		}
		if !r.final {
			return fmt.Errorf("%w: %s of the tenant holds the lease until %s", ErrBusy, held.Holder, held.Expires.Format(time.RFC3339))
		}
		log.WarnContext(ctx, kind+" refused: the tenant's lease stayed held", "holder", held.Holder)
		cause := errcode.Wrap(err, errcode.Conflict,
			"The %s did not run: another job of this tenant (%s) was still running after %d attempts to start this one. Start it again once that has finished.",
			kind, held.Holder, r.deliveries)
		return r.settle(ctx, &Attempt[T]{Keeper: k, Final: true, Log: log}, cause)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinalWriteTimeout)
		defer cancel()
		if err := r.o.Leases.Release(rctx, l); err != nil && !errors.Is(err, lease.ErrLost) {
			log.WarnContext(ctx, "failed to release the tenant lease; it expires by itself", "err", err)
		}
	}()
	held, stopHold := r.o.Leases.Hold(ctx, l, r.o.LeaseTTL, r.o.LeaseTTL/3)
	defer func() { _ = stopHold() }()
	return r.attempt(held, k)
}

// attempt starts the row, runs the work with a heartbeat and settles the
// outcome; ctx is the lease's.
func (r *runner[T]) attempt(ctx context.Context, k *catalog.Keeper[T]) error {
	kind := r.spec.Kind
	a := &Attempt[T]{ID: NewAttemptID(), Keeper: k, Final: r.final}
	retry := k.Snapshot().Phase() != catalog.PhaseQueued
	if err := k.Update(ctx, func(row T) error { return row.Start(a.ID, r.o.Now(), retry) }); err != nil {
		if errors.Is(err, catalog.ErrTakenOver) {
			return fmt.Errorf("%w: another attempt started the %s first: %w", ErrBusy, kind, err)
		}
		return fmt.Errorf("failed to mark the %s running: %w", kind, err)
	}
	a.Log = r.log.With("attempt", a.ID)
	a.Log.InfoContext(ctx, kind+" started", "retry", retry)

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		k.Beat(wctx, r.o.HeartbeatEvery, func(row T) error { return r.spec.Beat(row, r.o.Now()) }, cancel, func(err error) {
			a.Log.WarnContext(ctx, "failed to record the "+kind+"'s heartbeat; retried at the next beat", "err", err)
		})
	}()

	commit, err := r.spec.Work(wctx, a)
	// The work may have finished just as the lease or the row was lost;
	// never commit then. Read the cause before cancel ends wctx.
	var interrupted error
	if wctx.Err() != nil {
		interrupted = context.Cause(wctx)
	}
	cancel(context.Canceled)
	<-hbDone
	if errors.Is(interrupted, catalog.ErrTakenOver) {
		a.Log.WarnContext(ctx, kind+" attempt stopped: another attempt owns the row now", "err", interrupted)
		return fmt.Errorf("%w: %w", ErrBusy, interrupted)
	}
	if errors.Is(interrupted, lease.ErrLost) {
		interrupted = errcode.Wrap(interrupted, errcode.Conflict,
			"The %s stopped because the tenant's lease was lost to another job of the tenant. It is retried.", kind)
	}
	if interrupted == nil && err != nil && r.spec.Recover != nil {
		handled, rerr := r.spec.Recover(ctx, a, err)
		if handled {
			return rerr
		}
		if rerr != nil {
			err = rerr
		}
	}
	if interrupted != nil {
		// The work's own error is then a consequence (a cancelled read can
		// look like a truncated stream): judge the interruption, keep the
		// work's error text for the logs only.
		if err != nil {
			interrupted = fmt.Errorf("%s interrupted (%v): %w", kind, err, interrupted)
		}
		err = interrupted
	}
	if err != nil {
		return r.settle(ctx, a, err)
	}
	if commit == nil {
		return nil
	}
	err = k.Update(ctx, func(row T) error {
		if err := r.settleRow(row); err != nil {
			return err
		}
		return commit(row)
	})
	if err != nil {
		if errors.Is(err, catalog.ErrTakenOver) {
			return fmt.Errorf("%w: %w", ErrBusy, err)
		}
		// The work is done but not committed: the retry redoes it.
		return fmt.Errorf("failed to commit the %s row: %w", kind, err)
	}
	if r.spec.Committed != nil {
		r.spec.Committed(ctx, a, k.Snapshot())
	}
	return nil
}

func (r *runner[T]) settleRow(row T) error {
	if r.spec.Settle == nil {
		return nil
	}
	return r.spec.Settle(row, r.o.Now())
}

// settle records a failure by the retry rule: a permanent failure, or any
// on the message's last delivery, marks the row failed and acknowledges
// the message; any other clears the heartbeat, so the redelivered message
// takes the row over at once, and fails the invocation so that the host
// redelivers it. The writes run even if ctx has ended.
func (r *runner[T]) settle(ctx context.Context, a *Attempt[T], cause error) error {
	kind, log := r.spec.Kind, a.Log
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinalWriteTimeout)
	defer cancel()
	if a.Final || IsPermanent(cause) {
		d := Detail(cause)
		log.ErrorContext(ctx, kind+" failed", "code", string(d.Code), "err", cause)
		err := a.Keeper.Update(wctx, func(row T) error {
			if a.ID != "" {
				if err := r.settleRow(row); err != nil {
					return err
				}
			}
			return row.Fail(r.o.Now(), d)
		})
		if err != nil {
			return fmt.Errorf("failed to mark the %s failed (%w) after: %w", kind, err, cause)
		}
		if a.ID != "" && r.spec.Abandon != nil {
			r.spec.Abandon(wctx, a)
		}
		return nil
	}
	log.WarnContext(ctx, kind+" attempt failed; it is retried", "code", string(errcode.CodeOf(cause)), "err", cause)
	if a.ID == "" {
		// Never started: the row is as it was; nothing to release.
		return cause
	}
	err := a.Keeper.Update(wctx, func(row T) error {
		if err := r.settleRow(row); err != nil {
			return err
		}
		row.JobPart().HeartbeatAt = time.Time{}
		return nil
	})
	if err != nil {
		log.WarnContext(ctx, "failed to release the "+kind+" row for the retry; it is taken over once stale", "err", err)
	}
	return cause
}

// Detail is API.md's {code, message} of a failed job.
func Detail(err error) errcode.Detail {
	code, msg := errcode.Public(err)
	return errcode.Detail{Code: code, Message: msg}
}

// NewAttemptID names one attempt (the row's Attempt, a backup's blob
// directory, blobstore.Layout).
func NewAttemptID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "a" + hex.EncodeToString(b[:])
}
