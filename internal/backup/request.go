package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/lease"
)

// Request-lease timing: the holder only reads the catalog, writes one row
// and enqueues one message, so a short TTL suffices and a waiting POST
// polls briefly.
const (
	requestLeaseTTL  = 30 * time.Second
	requestLeasePoll = 50 * time.Millisecond
	requestLeaseWait = 10 * time.Second
)

// RequestOnce is POST …/backups: while the tenant has a backup queued or
// running it starts nothing and returns that backup (joined = true);
// otherwise it requests a new one (see [Service.Request]).
//
// With Options.RequestLeases the check and the create run under the
// tenant's request lease, so concurrent POSTs, on any instance, make one
// backup: the second waits for the first and then finds its row.
func (s *Service) RequestOnce(ctx context.Context, tenant string) (b *catalog.Backup, joined bool, err error) {
	if s.o.RequestLeases != nil {
		l, err := s.acquireRequestLease(ctx, tenant)
		if err != nil {
			return nil, false, err
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
			defer cancel()
			if err := s.o.RequestLeases.Release(rctx, l); err != nil && !errors.Is(err, lease.ErrLost) {
				s.log.WarnContext(ctx, "failed to release the backup request lease; it expires by itself", "tenant", tenant, "err", err)
			}
		}()
	}
	active, err := s.o.Catalog.ActiveBackup(ctx, tenant)
	switch {
	case err == nil:
		return active, true, nil
	case !errors.Is(err, catalog.ErrNotFound):
		return nil, false, errcode.Wrap(fmt.Errorf("failed to look for a running backup: %w", err), errcode.ServiceUnavailable,
			"The backup could not be requested. Try again later.")
	}
	b, err = s.Request(ctx, tenant, catalog.ReasonManual)
	return b, false, err
}

// acquireRequestLease waits up to requestLeaseWait for the tenant's
// request lease.
func (s *Service) acquireRequestLease(ctx context.Context, tenant string) (*lease.Lease, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	holder := "request:" + hex.EncodeToString(id[:])
	deadline := time.Now().Add(requestLeaseWait)
	for {
		l, err := s.o.RequestLeases.Acquire(ctx, tenant, holder, requestLeaseTTL)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, lease.ErrHeld) {
			return nil, errcode.Wrap(fmt.Errorf("failed to acquire the backup request lease: %w", err), errcode.ServiceUnavailable,
				"The backup could not be requested. Try again later.")
		}
		if time.Now().After(deadline) {
			return nil, errcode.Wrap(err, errcode.ServiceUnavailable,
				"Another request to back up this tenant is still being handled. Try again in a few seconds.")
		}
		t := time.NewTimer(requestLeasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
