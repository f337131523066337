package byok

import (
	"context"
	"errors"
	"sync"

	"github.com/twinit/byok-backup/internal/errcode"
)

// MonitorReport summarises one monitor run.
type MonitorReport struct {
	Tenants     int // tenants with BYOK enabled
	Checked     int // tenants whose check was recorded
	Active      int // … and found active
	Degraded    int // … and found degraded
	Transitions int // state changes
	// Skipped tenants were reconfigured or disabled during their check, or
	// not reached within the run's budget; the next run checks them.
	Skipped int
}

// Monitor re-validates every enabled tenant's key, at most
// MonitorConcurrency at once and each within CheckTimeout, so a dead or
// slow vault only costs its own slot; records lastCheck, keyId (which
// follows rotation when the version is not pinned) and active ↔ degraded
// transitions. It fails only when the tenants can't be listed or results
// can't be stored.
func (s *Service) Monitor(ctx context.Context) (MonitorReport, error) {
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	var (
		mu   sync.Mutex
		rep  MonitorReport
		errs []error
		wg   sync.WaitGroup
		// Unbuffered: the listing stays at most a page ahead of the
		// workers, so memory is a page and the pool, whatever the count.
		work = make(chan Record)
	)
	for range s.concurrency {
		wg.Go(func() {
			for rec := range work {
				res, err := s.checkTenant(ctx, rec)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case !res.recorded:
					rep.Skipped++
				default:
					rep.Checked++
					if res.state == Active {
						rep.Active++
					} else {
						rep.Degraded++
					}
					if res.changed {
						rep.Transitions++
					}
				}
				mu.Unlock()
			}
		})
	}
	var listErr error
	for rec, err := range s.store.Enabled(ctx) {
		if err != nil {
			listErr = err
			break
		}
		mu.Lock()
		rep.Tenants++
		if ctx.Err() != nil {
			rep.Skipped++
			mu.Unlock()
			continue
		}
		mu.Unlock()
		work <- rec
	}
	close(work)
	wg.Wait()
	if listErr != nil {
		// Tenants past the failed page were neither checked nor counted.
		errs = append(errs, listErr)
	}
	level := s.log.InfoContext
	if rep.Skipped > 0 || len(errs) > 0 {
		level = s.log.WarnContext
	}
	level(ctx, "byok monitor run", "tenants", rep.Tenants, "checked", rep.Checked, "active", rep.Active,
		"degraded", rep.Degraded, "transitions", rep.Transitions, "skipped", rep.Skipped, "storeErrors", len(errs))
	return rep, errors.Join(errs...)
}

type checkResult struct {
	recorded, changed bool
	state             State
}

// checkTenant validates one tenant's key and records the outcome, unless
// the admin changed the settings meanwhile (their own PUT validated them).
func (s *Service) checkTenant(ctx context.Context, rec Record) (checkResult, error) {
	tctx, cancel := context.WithTimeout(ctx, s.checkTO)
	defer cancel()
	v, err := s.validate(tctx, rec.Tenant, rec.Settings)
	if err != nil {
		// Stored settings that no longer build a reference (e.g. the
		// template changed): a configuration problem worth a degraded state.
		v = Validation{Err: err}
	}
	if ctx.Err() != nil {
		// The run itself ran out of time or was cancelled: not the vault's fault.
		return checkResult{}, nil
	}
	if v.Err != nil && tctx.Err() != nil && !keyCauses[errcode.CodeOf(v.Err)] {
		v.Err = errcode.Wrap(v.Err, errcode.KeyVaultUnreachable, "Key Vault did not answer within %s.", s.checkTO)
	}
	now := s.clock()
	var from State
	stored, changed, err := s.systemWrite(ctx, rec.Tenant, func(r *Record) bool {
		if !r.Enabled || r.Version != rec.Version {
			return false
		}
		from = r.State()
		s.apply(r, now, v.Err)
		if v.Err == nil {
			r.KeyID, r.KeyType, r.KeySize = v.KeyID, v.KeyType, v.KeySize
		}
		return true
	})
	if err != nil {
		return checkResult{}, err
	}
	if !changed {
		return checkResult{}, nil
	}
	s.logTransition(ctx, rec.Tenant, from, stored, "monitor")
	s.logOlderKeys(ctx, stored)
	return checkResult{recorded: true, changed: from != stored.State(), state: stored.State()}, nil
}

// logOlderKeys says how many of the tenant's completed backups are wrapped
// by an older version of its key (or another key): what a re-wrap
// (API.md §7) would move to the current version. Counts only, no ids.
func (s *Service) logOlderKeys(ctx context.Context, rec Record) {
	if s.backups == nil || rec.KeyID == "" {
		return
	}
	c, err := s.backups.CountBackups(ctx, rec.Tenant, rec.KeyID)
	if err != nil {
		s.log.WarnContext(ctx, "byok monitor could not count the tenant's backups", "tenant", rec.Tenant, "err", err)
		return
	}
	if c.OlderCustomerKeys > 0 {
		s.log.InfoContext(ctx, "backups on older customer key versions", "tenant", rec.Tenant,
			"olderCustomerKeys", c.OlderCustomerKeys, "customer", c.Customer, "platform", c.Platform)
	}
}
