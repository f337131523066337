package byok

import (
	"context"
	"fmt"
	"time"

	"github.com/twinit/byok-backup/internal/keywrap"
)

// CustomerKey returns what the backup pipeline wraps a tenant's data key
// with: the customer key's reference (Version is the pinned version, or ""
// to follow the key's current version) and the settings, with enabled false
// when BYOK is off (then ref is zero and the platform key applies).
func (s *Service) CustomerKey(ctx context.Context, tenant string) (ref keywrap.Ref, settings Settings, enabled bool, err error) {
	if err := checkTenant(tenant); err != nil {
		return keywrap.Ref{}, Settings{}, false, err
	}
	rec, err := s.store.Get(ctx, tenant)
	if err != nil {
		return keywrap.Ref{}, Settings{}, false, err
	}
	if !rec.Enabled {
		return keywrap.Ref{}, Settings{}, false, nil
	}
	ref, err = s.ref(tenant, rec.Settings)
	if err != nil {
		return keywrap.Ref{}, Settings{}, false, fmt.Errorf("stored BYOK settings of %q are unusable: %w", tenant, err)
	}
	return ref, rec.Settings, true, nil
}

// RecordKeyUse records the outcome of using the tenant's customer key
// (a wrap by the backup pipeline): nil makes the state active, an error
// makes it degraded (degradedSince set on the transition) and is recorded
// as the last check. It does nothing while BYOK is disabled.
func (s *Service) RecordKeyUse(ctx context.Context, tenant string, useErr error) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	now := s.clock()
	var from State
	rec, changed, err := s.systemWrite(ctx, tenant, func(r *Record) bool {
		if !r.Enabled {
			return false
		}
		from = r.State()
		s.apply(r, now, useErr)
		return true
	})
	if err != nil {
		return err
	}
	if changed {
		s.logTransition(ctx, tenant, from, rec, "key use")
	}
	return nil
}

// apply records a check or use outcome on r and moves its state.
func (s *Service) apply(r *Record, now time.Time, outcome error) {
	if outcome == nil {
		r.LastCheck = &Check{At: now, OK: true}
		r.DegradedSince = time.Time{}
		return
	}
	e := s.keyError(r.Tenant, r.Settings, outcome)
	r.LastCheck = &Check{At: now, OK: false, Code: string(e.Code), Message: e.Message}
	if r.DegradedSince.IsZero() {
		r.DegradedSince = now
	}
}

// logTransition logs a state change at warning level with the tenant and
// the reason code; the message never carries key material or secrets.
func (s *Service) logTransition(ctx context.Context, tenant string, from State, to Record, trigger string) {
	if from == to.State() {
		return
	}
	attrs := []any{"tenant", tenant, "from", from, "to", to.State(), "trigger", trigger, "keyId", to.KeyID}
	if c := to.LastCheck; c != nil && !c.OK {
		attrs = append(attrs, "code", c.Code, "reason", c.Message)
	}
	s.log.WarnContext(ctx, "byok key state changed", attrs...)
}
