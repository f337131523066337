package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// errTakenOver: the row changed under a running attempt (another attempt
// took it over); this attempt must stop and not commit.
var errTakenOver = errors.New("backup: the row was taken over by another attempt")

// rowWriteTimeout bounds one heartbeat write of the Backups row.
const rowWriteTimeout = 15 * time.Second

// rowKeeper serialises one attempt's writes to its catalog row: the
// heartbeat and the final write share the row's ETag.
type rowKeeper struct {
	mu   sync.Mutex
	cat  catalog.Store
	row  *catalog.Backup
	now  func() time.Time
	done bool
}

// update applies change to a copy of the row and writes it conditionally.
func (k *rowKeeper) update(ctx context.Context, change func(b *catalog.Backup) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return errTakenOver
	}
	b := k.row.Clone()
	if err := change(b); err != nil {
		return err
	}
	if err := k.cat.UpdateBackup(ctx, b); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			k.done = true
			return fmt.Errorf("%w: %w", errTakenOver, err)
		}
		return err
	}
	k.row = b
	return nil
}

// snapshot returns a copy of the row as last written.
func (k *rowKeeper) snapshot() *catalog.Backup {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.row.Clone()
}

// heartbeat touches the row every interval until ctx ends. A lost row
// (taken over) cancels the attempt through cancel; other write failures
// are retried at the next beat.
func (k *rowKeeper) heartbeat(ctx context.Context, every time.Duration, cancel context.CancelCauseFunc, warn func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The write itself is not cancelled with the attempt: a request
		// cancelled after Table Storage applied it would leave k.row with a
		// stale ETag, and the commit would then look like a takeover.
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), rowWriteTimeout)
		err := k.update(wctx, func(b *catalog.Backup) error { return b.Heartbeat(k.now()) })
		wcancel()
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.Is(err, errTakenOver):
			cancel(err)
			return
		default:
			warn(err)
		}
	}
}

// detail is the contract's {code, message} for a failed backup.
func detail(err error) errcode.Detail {
	code, msg := errcode.Public(err)
	return errcode.Detail{Code: code, Message: msg}
}
