package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrTakenOver reports that a row changed under a running attempt: another
// attempt took it over, so this one must stop and not commit.
var ErrTakenOver = errors.New("catalog: the row was taken over by another attempt")

// KeeperWriteTimeout bounds one heartbeat write.
const KeeperWriteTimeout = 15 * time.Second

// Keeper serialises one attempt's writes to its row (a *Backup or a
// *Restore): the heartbeat and the final write share the row's ETag, so a
// conflict can only mean that another attempt took the row over.
type Keeper[T interface{ Clone() T }] struct {
	mu    sync.Mutex
	write func(context.Context, T) error // the store's conditional update
	row   T
	lost  bool
}

// NewKeeper keeps row, written with write (e.g. Store.UpdateBackup).
func NewKeeper[T interface{ Clone() T }](row T, write func(context.Context, T) error) *Keeper[T] {
	return &Keeper[T]{write: write, row: row}
}

// Update applies change to a copy of the row and writes it conditionally.
// After a conflict every call returns ErrTakenOver.
func (k *Keeper[T]) Update(ctx context.Context, change func(T) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lost {
		return ErrTakenOver
	}
	r := k.row.Clone()
	if err := change(r); err != nil {
		return err
	}
	if err := k.write(ctx, r); err != nil {
		if errors.Is(err, ErrConflict) {
			k.lost = true
			return fmt.Errorf("%w: %w", ErrTakenOver, err)
		}
		return err
	}
	k.row = r
	return nil
}

// Snapshot returns a copy of the row as last written.
func (k *Keeper[T]) Snapshot() T {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.row.Clone()
}

// Beat writes change (a heartbeat, or persisted progress) every interval
// until ctx ends. A lost row cancels the attempt through cancel; other write
// failures go to warn and are retried at the next beat.
func (k *Keeper[T]) Beat(ctx context.Context, every time.Duration, change func(T) error, cancel context.CancelCauseFunc, warn func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The write itself is not cancelled with the attempt: a request
		// cancelled after the service applied it would leave k.row with a
		// stale ETag, and the final write would then look like a takeover.
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), KeeperWriteTimeout)
		err := k.Update(wctx, change)
		wcancel()
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, ErrTakenOver):
			cancel(err)
			return
		default:
			warn(err)
		}
	}
}
