package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/envelope"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// loadManifest reads and parses the manifest that b committed. Before any
// key is used it refuses, as IntegrityCheckFailed, a manifest blob larger
// than the format allows (without reading it: its size is not trusted)
// and one other than the row pins (catalog.Backup.ManifestDigest), such as
// another attempt's manifest of the same backup, valid but not committed.
// A row written before digests were recorded pins none: its manifest is
// the one in the attempt folder the row names, authenticated by Open.
func (s *Service) loadManifest(ctx context.Context, b *catalog.Backup) (blobstore.Layout, *envelope.Manifest, error) {
	layout, err := layoutOf(b)
	if err != nil {
		return blobstore.Layout{}, nil, errIntegrity(err)
	}
	raw, err := blobstore.GetInto(ctx, s.blobs, layout.ManifestOf(b.Rewraps), nil, envelope.MaxManifestSize)
	switch {
	case blobstore.IsNotExist(err):
		return blobstore.Layout{}, nil, errIntegrity(fmt.Errorf("the manifest is missing: %w", err))
	case blobstore.IsTooLarge(err):
		return blobstore.Layout{}, nil, errIntegrity(fmt.Errorf("the manifest is larger than the format allows: %w", err))
	case err != nil:
		return blobstore.Layout{}, nil, fmt.Errorf("failed to read the manifest: %w", err)
	}
	if !b.MatchesManifest(raw) {
		return blobstore.Layout{}, nil, errIntegrity(errors.New("the manifest is not the one the backup committed"))
	}
	m, err := envelope.ParseManifest(raw)
	if err != nil {
		return blobstore.Layout{}, nil, err // ErrIntegrity or ErrUnsupportedFormat, both IntegrityCheckFailed
	}
	return layout, m, nil
}

// wrappedKey is the data key to unwrap. Its algorithm is never chosen by
// the manifest's clear part: the service wraps only with RSA-OAEP-256, so
// that is the algorithm of the authenticated record (the bytes the row's
// digest pins, or, for older rows, the manifest Open authenticates after
// the unwrap), and a manifest naming another is refused before Key Vault
// is asked to decrypt anything.
func wrappedKey(m *envelope.Manifest) (keywrap.Wrapped, error) {
	if m.Key.Algorithm != keywrap.Algorithm {
		return keywrap.Wrapped{}, errIntegrity(fmt.Errorf("the manifest names wrap algorithm %q", m.Key.Algorithm))
	}
	w := m.Key.Wrapped()
	w.Algorithm = keywrap.Algorithm
	return w, nil
}

// keyRef builds the reference of the key that wrapped b's data key from
// the catalog row (trusted) and checks that the manifest (not yet
// authenticated) names the same key: a manifest whose key reference was
// changed fails here, before any Key Vault call. A customer key's vault URL
// is rebuilt from KEYVAULT_URL_TEMPLATE and the vault name, so a stored key
// id never becomes a URL by itself; the Entra tenant to sign in to is the
// one recorded in the row, else (older rows) the current BYOK settings'.
func (s *Service) keyRef(ctx context.Context, b *catalog.Backup, m *envelope.Manifest) (keywrap.Ref, error) {
	if m.Key.KeyID != b.KeyID || m.Key.Source != b.KeySource {
		return keywrap.Ref{}, errIntegrity(fmt.Errorf("manifest key %s (%s) differs from the catalog's %s (%s)",
			m.Key.KeyID, m.Key.Source, b.KeyID, b.KeySource))
	}
	vaultURL, name, version, err := keywrap.ParseKeyID(b.KeyID)
	if err != nil || version == "" {
		return keywrap.Ref{}, errIntegrity(fmt.Errorf("recorded key id %q is not a versioned key id: %v", b.KeyID, err))
	}
	switch b.KeySource {
	case keywrap.Platform:
		pv, pn, _, err := keywrap.ParseKeyID(s.o.PlatformKey.KeyID())
		if err != nil || pv != vaultURL || !strings.EqualFold(pn, name) {
			return keywrap.Ref{}, errcode.Wrap(fmt.Errorf("backup key %s is not the platform key %s", b.KeyID, s.o.PlatformKey.KeyID()),
				errcode.Internal, "The backup was made with platform key %s in vault %s, which is no longer the configured platform key.", name, keywrap.VaultName(vaultURL))
		}
		ref := s.o.PlatformKey
		ref.KeyName, ref.Version = name, version
		return ref, nil
	case keywrap.Customer:
		vault := keywrap.VaultName(vaultURL)
		if _, _, err := keywrap.CheckKeyID(s.o.URLTemplate, vault, b.KeyID); err != nil {
			return keywrap.Ref{}, errIntegrity(fmt.Errorf("recorded key id %q is not in a vault the template builds: %w", b.KeyID, err))
		}
		// The backup's tenant must still be listed in the key's ownership
		// tag (API.md §5), whatever tenant the restore writes to.
		ref := keywrap.Ref{Source: keywrap.Customer, VaultURL: vaultURL, KeyName: name, Version: version,
			TenantID: b.EntraTenantID, Owner: b.Tenant}
		if ref.TenantID != "" {
			// The row names the Entra tenant the key was reached through:
			// the restore works whether or not BYOK is still on, as long as
			// the customer still grants access (contract: "existing backups
			// keep their keys").
			return ref, nil
		}
		// Rows written before the Entra tenant was recorded: only the
		// current settings know it.
		_, set, enabled, err := s.o.Keys.CustomerKey(ctx, b.Tenant)
		if err != nil {
			return keywrap.Ref{}, fmt.Errorf("failed to read the BYOK settings of %s: %w", b.Tenant, err)
		}
		if !enabled {
			return keywrap.Ref{}, job.Permanent(errcode.New(errcode.CustomerKeyUnavailable,
				"This backup's data key is wrapped with the customer key %s (version %s) in vault %s, but BYOK is turned off for tenant %s, so the service has no access to that key. The customer must restore access: configure BYOK again with vault %s and grant application %s unwrapKey on the key, then start the restore again.",
				name, version, vault, b.Tenant, vault, s.app()))
		}
		ref.TenantID = set.TenantID
		return ref, nil
	}
	return keywrap.Ref{}, errIntegrity(fmt.Errorf("unknown key source %q", b.KeySource))
}

func (s *Service) app() string {
	if s.o.ApplicationID == "" {
		return "of the backup service"
	}
	return s.o.ApplicationID
}

// unwrap unwraps the data key once, audited with the restore's scope, and
// turns Key Vault failures into the restore's outcome: a customer key that
// is disabled, deleted or no longer granted is CustomerKeyUnavailable (the
// customer's revocation working); a wrapped key Key Vault can't decrypt
// is IntegrityCheckFailed; an unreachable vault is retried.
func (s *Service) unwrap(ctx context.Context, r *catalog.Restore, b *catalog.Backup, m *envelope.Manifest, log *slog.Logger) (*envelope.DataKey, error) {
	ref, err := s.keyRef(ctx, b, m)
	if err != nil {
		return nil, err
	}
	wrapped, err := wrappedKey(m)
	if err != nil {
		return nil, err
	}
	ctx = audit.WithScope(ctx, audit.Scope{Tenant: r.Tenant, BackupID: r.BackupID, RestoreID: r.RestoreID})
	raw, err := s.o.Wrapper.Unwrap(ctx, ref, wrapped)
	if err != nil {
		return nil, s.unwrapError(ctx, ref, err, log)
	}
	dk, err := envelope.DataKeyFromBytes(raw)
	clear(raw)
	if err != nil {
		return nil, errIntegrity(fmt.Errorf("unwrapped data key: %w", err))
	}
	return dk, nil
}

func (s *Service) unwrapError(ctx context.Context, ref keywrap.Ref, err error, log *slog.Logger) error {
	if ctx.Err() != nil {
		return fmt.Errorf("unwrapping the data key was interrupted: %w", err)
	}
	code := errcode.CodeOf(err)
	vault := keywrap.VaultName(ref.VaultURL)
	log.WarnContext(ctx, "failed to unwrap the data key", "keyId", ref.KeyID(), "keySource", ref.Source, "code", code, "err", err)
	switch code {
	case errcode.IntegrityCheckFailed, errcode.InvalidRequest, errcode.UnsupportedKeyType:
		return errIntegrity(err)
	}
	if ref.Source == keywrap.Platform {
		return errcode.Wrap(err, errcode.ServiceUnavailable,
			"The platform key %s in vault %s could not unwrap the backup's data key (%s). The restore is retried; if it keeps failing, the platform's Key Vault is unavailable.", ref.KeyName, vault, code)
	}
	out := errcode.Wrap(err, errcode.CustomerKeyUnavailable,
		"The customer key %s (version %s) in vault %s could not unwrap this backup's data key (%s): it is disabled, deleted, or no longer granted. The customer must restore access to key %s in vault %s (enable or recover it, and grant application %s unwrapKey), then start the restore again.",
		ref.KeyName, ref.Version, vault, code, ref.KeyName, vault, s.app())
	switch code {
	case errcode.KeyVaultUnreachable, errcode.Throttled, errcode.Internal, errcode.ServiceUnavailable:
		// The vault, not the customer: retried.
		return out
	}
	return job.Permanent(out)
}
