package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/errcode"
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

// wrapDataKey wraps dk exactly once for the backup (contract §2, design.md
// "Fallback"): with the customer key when BYOK is enabled; with the
// platform key when BYOK is off, or when the customer key is unusable and
// the tenant allows the fallback. With fallbackToPlatformKey false an
// unusable customer key fails the backup with CustomerKeyUnavailable.
func (s *Service) wrapDataKey(ctx context.Context, tenant, backupID string, dk []byte, log *slog.Logger) (wrappedKey, error) {
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
		if err := s.o.Keys.RecordKeyUse(ctx, tenant, werr); err != nil {
			log.WarnContext(ctx, "failed to record the customer key's failed use", "err", err)
		}
		code, msg := errcode.Public(werr)
		if !settings.FallbackToPlatformKey {
			log.WarnContext(ctx, "customer key unusable and fallback to the platform key is off: the backup fails",
				"keyId", ref.KeyID(), "code", string(code), "err", werr)
			return wrappedKey{}, errcode.Wrap(werr, errcode.CustomerKeyUnavailable,
				"The backup was not made: the customer key %s/%s could not be used (%s: %s) and fallback to the platform key is turned off. Restore access to the key, or allow the fallback in the BYOK settings, then start a backup.",
				settings.KeyVaultName, settings.KeyName, code, msg)
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
