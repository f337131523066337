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
