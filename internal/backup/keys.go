package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// wrappedKey is the outcome of the key choice: which key wrapped the data
// key and, when BYOK was on but the platform key was used, why.
type wrappedKey struct {
	source   keywrap.Source
	wrapped  keywrap.Wrapped
	fallback *errcode.Detail
	// entraTenant is the customer's Entra tenant the customer key was
	// reached through; empty for the platform key.
	entraTenant string
}

// definitive reports whether a key failure is the customer's refusal
// (API.md §5), the only kind that falls back (or fails a strict tenant)
// at once. Anything else (KeyVaultUnreachable, Throttled, Key Vault 5xx,
// which classify reports as KeyVaultUnreachable, or an unexpected answer)
// may pass, so it is waited out first.
func definitive(c errcode.Code) bool {
	switch c {
	case errcode.KeyDisabled, errcode.KeyNotFound, errcode.KeyAccessDenied, errcode.KeyOperationNotPermitted,
		errcode.UnsupportedKeyType, errcode.KeyOwnershipNotProven, errcode.KeyVaultAuthFailed:
		return true
	}
	return false
}

// keyWaitError: the customer key failed for a transient cause and the
// grace has not run out; the backup is retried later, not with the
// platform key.
type keyWaitError struct {
	why      errcode.Detail // the cause, for the row's lastError
	deadline time.Time      // when the grace runs out
	fallback bool           // the tenant allows the platform key after it
	err      error
}

func (e *keyWaitError) Error() string {
	return fmt.Sprintf("customer key failed transiently (%s), retried until %s: %v", e.why.Code, e.deadline.Format(time.RFC3339), e.err)
}

func (e *keyWaitError) Unwrap() error { return e.err }

// wrapDataKey wraps dk exactly once for the backup (API.md §2 and §5,
// docs/ARCHITECTURE.md "Fallback"): with the customer key when BYOK is enabled; with
// the platform key when BYOK is off, or when the customer key definitively
// refuses (or has failed transiently for TransientGrace since firstAttempt)
// and the tenant allows the fallback. With fallbackToPlatformKey false such
// a key fails the backup with CustomerKeyUnavailable. A transient failure
// within the grace returns a *keyWaitError.
func (s *Service) wrapDataKey(ctx context.Context, tenant, backupID string, firstAttempt time.Time, dk []byte, log *slog.Logger) (wrappedKey, error) {
	ctx = audit.WithScope(ctx, audit.Scope{Tenant: tenant, BackupID: backupID})
	ref, settings, enabled, err := s.o.Keys.CustomerKey(ctx, tenant)
	if err != nil {
		// Not knowing whether BYOK is on must not silently mean the
		// platform key: retry instead.
		return wrappedKey{}, errcode.Wrap(fmt.Errorf("failed to read the BYOK settings: %w", err),
			errcode.ServiceUnavailable, "The tenant's BYOK settings could not be read, so no key was chosen for the backup. It is retried.")
	}
	var fallback *errcode.Detail
	if enabled {
		ref.Source = keywrap.Customer
		w, werr := s.o.Wrapper.Wrap(ctx, ref, dk)
		if werr == nil {
			if err := s.o.Keys.RecordKeyUse(ctx, tenant, nil); err != nil {
				log.WarnContext(ctx, "failed to record the customer key's successful use", "err", err)
			}
			return wrappedKey{source: keywrap.Customer, wrapped: w, entraTenant: ref.TenantID}, nil
		}
		if cerr := context.Cause(ctx); ctx.Err() != nil {
			// Our own deadline or cancellation says nothing about the key.
			return wrappedKey{}, fmt.Errorf("wrapping with the customer key was interrupted: %w", errors.Join(cerr, werr))
		}
		code, msg := errcode.Public(werr)
		if deadline := firstAttempt.Add(s.o.TransientGrace); !definitive(code) && s.now().Before(deadline) {
			// Not recorded as a key use: a blip within the grace does not
			// make the tenant's BYOK state degraded (docs/DECISIONS.md).
			log.WarnContext(ctx, "customer key failed transiently: the backup waits and retries",
				"keyId", ref.KeyID(), "code", string(code), "graceEnds", deadline, "err", werr)
			return wrappedKey{}, &keyWaitError{why: errcode.Detail{Code: code, Message: msg}, deadline: deadline,
				fallback: settings.FallbackToPlatformKey, err: werr}
		}
		if err := s.o.Keys.RecordKeyUse(ctx, tenant, werr); err != nil {
			log.WarnContext(ctx, "failed to record the customer key's failed use", "err", err)
		}
		if !settings.FallbackToPlatformKey {
			log.WarnContext(ctx, "customer key unusable and fallback to the platform key is off: the backup fails",
				"keyId", ref.KeyID(), "code", string(code), "err", werr)
			// The customer's own refusal: no later delivery changes it.
			return wrappedKey{}, job.Permanent(errcode.Wrap(werr, errcode.CustomerKeyUnavailable,
				"The backup was not made: the customer key %s/%s could not be used (%s: %s) and fallback to the platform key is turned off. Restore access to the key, or allow the fallback in the BYOK settings, then start a backup.",
				settings.KeyVaultName, settings.KeyName, code, msg))
		}
		fallback = &errcode.Detail{Code: code, Message: msg}
		log.WarnContext(ctx, "customer key unusable: the backup uses the platform key",
			"keyId", ref.KeyID(), "code", string(code), "err", werr)
	}
	w, err := s.o.Wrapper.Wrap(ctx, s.o.PlatformKey, dk)
	if err != nil {
		// The platform key is ours, not the customer's: its failure is a
		// service outage, retried.
		return wrappedKey{}, errcode.Wrap(fmt.Errorf("failed to wrap the data key with the platform key: %w", err),
			errcode.ServiceUnavailable, "The platform key could not wrap the backup's data key, so no backup was made. It is retried; if it keeps failing, the platform's Key Vault is unavailable.")
	}
	return wrappedKey{source: keywrap.Platform, wrapped: w, fallback: fallback}, nil
}
