package rewrap

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
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Steps of one backup's re-wrap, in order; tests inject a crash after
// each (Service.fault).
const (
	stepWrapped = "wrapped"     // the data key is wrapped with the target key
	stepWritten = "written"     // the re-wrapped manifest is stored
	stepCommit  = "committed"   // the row names it
	stepOldGone = "old-deleted" // the previous manifest is deleted
)

// backupFailure is one backup that could not be re-wrapped: it keeps its
// old wrapping and is listed in the job's failures; the job goes on.
type backupFailure struct{ d errcode.Detail }

func (f *backupFailure) Error() string { return string(f.d.Code) + ": " + f.d.Message }

func failed(code errcode.Code, format string, args ...any) error {
	return &backupFailure{errcode.Detail{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// one re-wraps backup b if it needs it, counting the outcome. A returned
// error stops the job (retried, or failed if permanent): the target key or
// storage failed, which every further backup would hit too.
func (s *Service) one(ctx context.Context, r *catalog.Rewrap, t target, b *catalog.Backup, retry bool, prog *progress, log *slog.Logger) error {
	if !needs(r, t, b) {
		if retry && !r.DryRun && b.Rewraps > 0 {
			// An earlier attempt may have stopped between committing the row
			// and deleting the previous manifest: finish that.
			if err := s.deletePrevious(ctx, b); err != nil {
				return err
			}
		}
		prog.add(func(p *catalog.RewrapProgress) { p.Skipped++ })
		return nil
	}
	if r.DryRun {
		prog.add(func(p *catalog.RewrapProgress) { p.Done++ })
		return nil
	}
	err := s.rewrapBackup(ctx, t, b, retry, log)
	var bf *backupFailure
	switch {
	case err == nil:
		prog.add(func(p *catalog.RewrapProgress) { p.Done++ })
		return nil
	case errors.As(err, &bf):
		log.WarnContext(ctx, "backup not re-wrapped; it keeps its old wrapping", "backupId", b.BackupID, "code", string(bf.d.Code))
		prog.fail(b.BackupID, bf.d)
		return nil
	}
	return fmt.Errorf("re-wrap of backup %s: %w", b.BackupID, err)
}

// rewrapBackup is FORMAT.md §10 for one backup. At every step the row
// names a manifest that exists and the key that wraps its data key:
// the new manifest is written beside the old one, the row switches in one
// conditional update, and only then is the old manifest deleted.
func (s *Service) rewrapBackup(ctx context.Context, t target, b *catalog.Backup, retry bool, log *slog.Logger) error {
	layout, err := blobstore.ManifestLayout(b.Tenant, b.BackupID, b.ManifestBlob, b.Rewraps)
	if err != nil || b.Rewraps >= blobstore.MaxRewraps {
		return failed(errcode.IntegrityCheckFailed, "The backup's catalog row names no manifest a re-wrap can replace.")
	}
	m, err := s.readManifest(ctx, b, b.ManifestBlob)
	if err != nil {
		return err
	}
	oldRef, err := s.keyRef(ctx, b)
	if err != nil {
		return err
	}
	ctx = audit.WithScope(ctx, audit.Scope{Tenant: b.Tenant, BackupID: b.BackupID, Rewrap: true})
	raw, err := s.o.Wrapper.Unwrap(ctx, oldRef, m.Key.Wrapped())
	if err != nil {
		return unwrapFailure(ctx, oldRef, err)
	}
	dk, err := envelope.DataKeyFromBytes(raw)
	clear(raw)
	if err != nil {
		return failed(errcode.IntegrityCheckFailed, "The backup's data key is malformed.")
	}
	defer dk.Destroy()
	if _, err := envelope.Open(m, dk, b.Tenant, b.BackupID); err != nil {
		return failed(errcode.IntegrityCheckFailed, "The backup's manifest failed authentication; it was not re-wrapped.")
	}
	next := layout.RewrapManifest(b.Rewraps + 1)
	var out []byte
	if retry {
		// A previous attempt may have stored the re-wrapped manifest and
		// stopped before the row named it: adopt it instead of wrapping
		// again (redelivery re-wraps nothing twice). Its MAC, checked
		// with the data key, proves a holder of the key wrote it.
		out, err = s.adopt(ctx, next, dk, b, t)
		if err != nil {
			return err
		}
	}
	if out == nil {
		w, err := s.o.Wrapper.Wrap(ctx, t.ref, dk.Bytes())
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wrapping was interrupted: %w", err)
			}
			return keyFailure(err, "The target key %s in vault %s could not wrap the data key (%s): %s", t.ref.KeyName, keywrap.VaultName(t.ref.VaultURL))
		}
		if err := s.step(stepWrapped); err != nil {
			return err
		}
		out, err = envelope.Rewrap(m, dk, b.Tenant, b.BackupID, envelope.NewKeyRef(t.ref.Source, w))
		if err != nil {
			return fmt.Errorf("failed to build the re-wrapped manifest: %w", err)
		}
		if err := s.blobs.PutBlob(ctx, next, out); err != nil {
			return fmt.Errorf("failed to store the re-wrapped manifest: %w", err)
		}
	}
	if err := s.step(stepWritten); err != nil {
		return err
	}
	nm, err := envelope.ParseManifest(out)
	if err != nil {
		return fmt.Errorf("re-wrapped manifest: %w", err)
	}
	prev := b.ManifestBlob
	entra := ""
	if t.ref.Source == keywrap.Customer {
		entra = t.ref.TenantID
	}
	if err := s.commit(ctx, b, prev, nm.Key.Source, nm.Key.KeyID, entra, next, catalog.DigestManifest(out)); err != nil {
		return err
	}
	if err := s.step(stepCommit); err != nil {
		return err
	}
	if _, err := s.blobs.DeletePrefix(ctx, prev); err != nil {
		// The row no longer names it: a later run (or the retry) deletes it.
		return fmt.Errorf("failed to delete the previous manifest: %w", err)
	}
	return s.step(stepOldGone)
}

func (s *Service) step(name string) error {
	if s.fault == nil {
		return nil
	}
	return s.fault(name)
}

// commit makes the row name the re-wrapped manifest, conditional on the
// row's version; a row changed meanwhile (retention) is read again and
// updated if it still names the manifest this re-wrap replaced.
func (s *Service) commit(ctx context.Context, b *catalog.Backup, prev string, src keywrap.Source, keyID, entra, next, digest string) error {
	for range 3 {
		c := b.Clone()
		c.RecordRewrap(src, keyID, entra, next, digest, s.now())
		err := s.o.Backups.UpdateBackup(ctx, c)
		if err == nil {
			*b = *c
			return nil
		}
		if !errors.Is(err, catalog.ErrConflict) {
			return fmt.Errorf("failed to record the re-wrap: %w", err)
		}
		if b, err = s.o.Backups.GetBackup(ctx, b.Tenant, b.BackupID); err != nil {
			return fmt.Errorf("failed to read the backup again: %w", err)
		}
		if b.ManifestBlob != prev {
			return failed(errcode.Conflict, "The backup changed while it was re-wrapped; run the re-wrap again.")
		}
	}
	return fmt.Errorf("the backup's row kept changing: %w", catalog.ErrConflict)
}

// adopt returns the re-wrapped manifest a previous attempt stored at
// name, if it is authentic for this backup's data key and wrapped with the
// target key; nil otherwise (it is then overwritten).
func (s *Service) adopt(ctx context.Context, name string, dk *envelope.DataKey, b *catalog.Backup, t target) ([]byte, error) {
	raw, err := blobstore.GetInto(ctx, s.blobs, name, nil, envelope.MaxManifestSize)
	switch {
	case blobstore.IsNotExist(err), blobstore.IsTooLarge(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read a previous attempt's manifest: %w", err)
	}
	m, err := envelope.ParseManifest(raw)
	if err != nil || m.Key.KeyID != t.keyID || m.Key.Source != t.ref.Source {
		return nil, nil
	}
	if _, err := envelope.Open(m, dk, b.Tenant, b.BackupID); err != nil {
		return nil, nil
	}
	return raw, nil
}

// deletePrevious deletes the manifest b's previous re-wrap replaced.
func (s *Service) deletePrevious(ctx context.Context, b *catalog.Backup) error {
	l, err := blobstore.ManifestLayout(b.Tenant, b.BackupID, b.ManifestBlob, b.Rewraps)
	if err != nil {
		return nil // not a layout this service writes: leave it
	}
	if _, err := s.blobs.DeletePrefix(ctx, l.ManifestOf(b.Rewraps-1)); err != nil {
		return fmt.Errorf("failed to delete a replaced manifest: %w", err)
	}
	return nil
}

// readManifest reads the manifest the row names and checks it is the one
// the row pins; a backup whose manifest is missing or another is a
// failure of that backup, not of the job.
func (s *Service) readManifest(ctx context.Context, b *catalog.Backup, name string) (*envelope.Manifest, error) {
	raw, err := blobstore.GetInto(ctx, s.blobs, name, nil, envelope.MaxManifestSize)
	switch {
	case blobstore.IsNotExist(err):
		return nil, failed(errcode.IntegrityCheckFailed, "The backup's manifest is missing.")
	case blobstore.IsTooLarge(err):
		return nil, failed(errcode.IntegrityCheckFailed, "The backup's manifest is larger than the format allows.")
	case err != nil:
		return nil, fmt.Errorf("failed to read the manifest: %w", err)
	}
	if !b.MatchesManifest(raw) {
		return nil, failed(errcode.IntegrityCheckFailed, "The backup's manifest is not the one it committed.")
	}
	m, err := envelope.ParseManifest(raw)
	if err != nil {
		return nil, failed(errcode.IntegrityCheckFailed, "The backup's manifest is malformed.")
	}
	if m.Key.KeyID != b.KeyID || m.Key.Source != b.KeySource || m.Key.Algorithm != keywrap.Algorithm {
		return nil, failed(errcode.IntegrityCheckFailed, "The backup's manifest names another key than its catalog row.")
	}
	return m, nil
}

// keyRef is the reference of the key that wraps b's data key, built from
// the row as a restore builds it (internal/restore keyRef): the vault URL
// from KEYVAULT_URL_TEMPLATE, the tenant as the key's owner (API.md §5).
func (s *Service) keyRef(ctx context.Context, b *catalog.Backup) (keywrap.Ref, error) {
	vaultURL, name, version, err := keywrap.ParseKeyID(b.KeyID)
	if err != nil || version == "" {
		return keywrap.Ref{}, failed(errcode.IntegrityCheckFailed, "The backup's recorded key id is not a versioned key id.")
	}
	switch b.KeySource {
	case keywrap.Platform:
		pv, pn, _, err := keywrap.ParseKeyID(s.o.PlatformKey.KeyID())
		if err != nil || pv != vaultURL || !strings.EqualFold(pn, name) {
			return keywrap.Ref{}, failed(errcode.Internal, "The backup was made with platform key %s, which is no longer the configured platform key.", name)
		}
		ref := s.o.PlatformKey
		ref.KeyName, ref.Version = name, version
		return ref, nil
	case keywrap.Customer:
		vault := keywrap.VaultName(vaultURL)
		if _, _, err := keywrap.CheckKeyID(s.o.URLTemplate, vault, b.KeyID); err != nil {
			return keywrap.Ref{}, failed(errcode.IntegrityCheckFailed, "The backup's recorded key is not in a vault the service may use.")
		}
		ref := keywrap.Ref{Source: keywrap.Customer, VaultURL: vaultURL, KeyName: name, Version: version,
			TenantID: b.EntraTenantID, Owner: b.Tenant}
		if ref.TenantID == "" {
			_, set, enabled, err := s.o.Keys.CustomerKey(ctx, b.Tenant)
			if err != nil {
				return keywrap.Ref{}, fmt.Errorf("failed to read the BYOK settings: %w", err)
			}
			if !enabled {
				return keywrap.Ref{}, failed(errcode.CustomerKeyUnavailable, "The backup's customer key %s is unreachable: BYOK is turned off.", name)
			}
			ref.TenantID = set.TenantID
		}
		return ref, nil
	}

	return keywrap.Ref{}, failed(errcode.IntegrityCheckFailed, "The backup's key source %q is unknown.", b.KeySource)
}

// unwrapFailure: a key that refuses (disabled, deleted, no longer granted
// or owned) is that backup's failure, CustomerKeyUnavailable; an
// unreachable vault is the job's, retried.
func unwrapFailure(ctx context.Context, ref keywrap.Ref, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("unwrapping was interrupted: %w", err)
	}
	code := errcode.CodeOf(err)
	switch code {
	case errcode.KeyVaultUnreachable, errcode.Throttled, errcode.Internal, errcode.ServiceUnavailable:
		return errcode.Wrap(err, errcode.ServiceUnavailable, "Key Vault could not be reached to unwrap a backup's data key; the re-wrap is retried.")
	case errcode.IntegrityCheckFailed, errcode.InvalidRequest, errcode.UnsupportedKeyType:
		return failed(errcode.IntegrityCheckFailed, "Key Vault could not unwrap the backup's data key (%s).", code)
	}
	if ref.Source == keywrap.Platform {
		return errcode.Wrap(err, errcode.ServiceUnavailable, "The platform key could not unwrap a backup's data key (%s); the re-wrap is retried.", code)
	}
	return failed(errcode.CustomerKeyUnavailable,
		"The customer key %s (version %s) in vault %s could not unwrap this backup's data key (%s): it is disabled, deleted, or no longer granted. The backup keeps its old wrapping.",
		ref.KeyName, ref.Version, keywrap.VaultName(ref.VaultURL), code)
}
