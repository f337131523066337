package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// Stale ends the jobs whose last delivery crashed (or went to the poison
// queue): running rows that stopped proving alive, which nothing will ever
// finish, so their GET would say "running" forever.
type Stale[T catalog.Row[T]] struct {
	Kind string
	// List is the store's stale query (StaleBackups, StaleRestores).
	List func(ctx context.Context, before time.Time) ([]T, error)
	// Write is the store's conditional update.
	Write func(ctx context.Context, row T) error
	// Cause is the failure recorded on a row.
	Cause func(row T) errcode.Detail
}

// Fail marks failed every running row last alive before before. The write
// is conditional on the row read, so an attempt that proved alive
// meanwhile keeps its row (that conflict is not an error). It returns how
// many stale rows it found and how many it failed.
func (st Stale[T]) Fail(ctx context.Context, now, before time.Time, log *slog.Logger) (found, failed int, err error) {
	rows, err := st.List(ctx, before)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to list stale %ss: %w", st.Kind, err)
	}
	var errs []error
	for _, row := range rows {
		if err := row.Fail(now, st.Cause(row)); err != nil {
			continue
		}
		tenant, id := row.Key()
		if err := st.Write(ctx, row); err != nil {
			if !errors.Is(err, catalog.ErrConflict) {
				errs = append(errs, fmt.Errorf("failed to mark stale %s %s/%s failed: %w", st.Kind, tenant, id, err))
			}
			continue
		}
		failed++
		j := row.JobPart()
		log.WarnContext(ctx, "stale running "+st.Kind+" marked failed", "tenant", tenant, st.Kind+"Id", id,
			"lastAlive", j.LastAlive(), "attempts", j.Attempts)
	}
	return len(rows), failed, errors.Join(errs...)
}

// Forgotten finds queued jobs whose message was never written (a process
// killed between the queued row and its message) and enqueues it again.
// Nothing else would ever run such a row, and a queued backup answers
// every later POST …/backups of its tenant. A row whose message is only
// late (a backlog) gets a duplicate, which is harmless: the row decides
// ([Run]).
type Forgotten[T catalog.Row[T]] struct {
	Kind string
	// List is the store's queued query (QueuedBackups, QueuedRestores):
	// queued rows waiting since before before.
	List func(ctx context.Context, before time.Time) ([]T, error)
	// Write is the store's conditional update.
	Write func(ctx context.Context, row T) error
	// Enqueue sends the row's job message.
	Enqueue func(ctx context.Context, row T) error
}

// Resend enqueues the message of every queued row waiting since before
// before. Each row first records the resend (ResentAt = now, conditional
// on the row read), then gets its message: a row that moved on meanwhile,
// or that a concurrent sweep claimed, is skipped, and a row whose message
// waits in a backlog is resent once per grace, not on every run. A crash
// between the two writes delays the resend by one grace. It returns how
// many forgotten rows it found and how many it resent.
func (f Forgotten[T]) Resend(ctx context.Context, now, before time.Time, log *slog.Logger) (found, resent int, err error) {
	rows, err := f.List(ctx, before)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to list queued %ss: %w", f.Kind, err)
	}
	var errs []error
	for _, row := range rows {
		tenant, id := row.Key()
		row.JobPart().ResentAt = now
		if err := f.Write(ctx, row); err != nil {
			if !errors.Is(err, catalog.ErrConflict) {
				errs = append(errs, fmt.Errorf("failed to record the resend of queued %s %s/%s: %w", f.Kind, tenant, id, err))
			}
			continue
		}
		if err := f.Enqueue(ctx, row); err != nil {
			errs = append(errs, fmt.Errorf("failed to resend queued %s %s/%s: %w", f.Kind, tenant, id, err))
			continue
		}
		resent++
		log.WarnContext(ctx, "queued "+f.Kind+" waited past the sweep grace (its message was lost or is late); its job was enqueued again", "tenant", tenant, f.Kind+"Id", id,
			"requestedAt", row.JobPart().RequestedAt)
	}
	return len(rows), resent, errors.Join(errs...)
}
