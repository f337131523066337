package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/tenants"
)

// SweepReport counts what one sweep did.
type SweepReport struct {
	// StaleFailed running rows whose heartbeat was older than SweepGrace
	// were marked failed (their job was not retried in time).
	StaleFailed int
	// DeletedBackups prefixes (failed or missing rows) and abandoned
	// attempt directories of completed backups were deleted.
	DeletedBackups int
	DeletedBlobs   int
}

// Sweep fails running backups whose worker is long gone and deletes
// garbage under the backups container: the blobs of backups whose row is
// failed or missing once older than SweepGrace, and the directories of
// attempts of a completed backup other than the one it committed. Queued
// and running backups are left alone. It lists the whole container, one
// page at a time, and reads one row per backup id.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	now := s.now()
	stale, err := s.o.Catalog.StaleBackups(ctx, now.Add(-s.o.SweepGrace))
	if err != nil {
		return rep, fmt.Errorf("failed to list stale backups: %w", err)
	}
	var errs []error
	for _, b := range stale {
		cause := errcode.Detail{Code: errcode.Internal,
			Message: "The backup stopped (its worker was interrupted) and was not resumed. Its data was discarded; start a new backup."}
		if err := b.Fail(now, cause); err != nil {
			continue
		}
		if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
			if !errors.Is(err, catalog.ErrConflict) {
				errs = append(errs, fmt.Errorf("failed to mark stale backup %s/%s failed: %w", b.Tenant, b.BackupID, err))
			}
			continue
		}
		rep.StaleFailed++
		s.log.WarnContext(ctx, "stale running backup marked failed", "tenant", b.Tenant, "backupId", b.BackupID, "heartbeatAt", b.HeartbeatAt)
	}

	// Collect the garbage prefixes while listing, delete after: deleting
	// during a listing would move its continuation point.
	var garbage []string
	var cur struct {
		backup string // "<tenant>/<backupId>/"
		keep   string // prefix to keep ("" = delete all), or skip
		skip   bool
	}
	err = s.blobs.List(ctx, "", func(info blobstore.Info) error {
		tenant, id, rest, ok := splitBackupBlob(info.Name)
		if !ok {
			return nil // not ours; never delete what we can't name
		}
		prefix := tenant + "/" + id + "/"
		if prefix != cur.backup {
			cur.backup, cur.keep, cur.skip = prefix, "", false
			decision, keep, err := s.judge(ctx, tenant, id)
			if err != nil {
				return err
			}
			switch decision {
			case keepAll:
				cur.skip = true
			case deleteAll:
				garbage = append(garbage, prefix)
				cur.skip = true
			case keepCommitted:
				cur.keep = keep
			}
		}
		if cur.skip {
			return nil
		}
		// A completed backup: everything outside the committed attempt's
		// directory is an abandoned attempt.
		if !strings.HasPrefix(info.Name, cur.keep) {
			attempt, _, _ := strings.Cut(rest, "/")
			p := prefix + attempt
			if !strings.Contains(rest, "/") {
				p = info.Name // a loose blob directly under the backup
			} else {
				p += "/"
			}
			if len(garbage) == 0 || garbage[len(garbage)-1] != p {
				garbage = append(garbage, p)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("failed to list the backups container: %w", err))
	}
	for _, p := range garbage {
		n, err := s.blobs.DeletePrefix(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to delete %s: %w", p, err))
			continue
		}
		rep.DeletedBackups++
		rep.DeletedBlobs += n
		s.log.InfoContext(ctx, "garbage deleted", "prefix", p, "blobs", n)
	}
	return rep, errors.Join(errs...)
}

type sweepDecision int

const (
	keepAll sweepDecision = iota
	deleteAll
	keepCommitted
)

// judge decides what happens to the blobs of one backup id.
func (s *Service) judge(ctx context.Context, tenant, id string) (sweepDecision, string, error) {
	b, err := s.o.Catalog.GetBackup(ctx, tenant, id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		t, _ := catalog.IDTime(id)
		return choose(s.now().Sub(t) > s.o.SweepGrace), "", nil
	case err != nil:
		return keepAll, "", fmt.Errorf("failed to read backup %s/%s: %w", tenant, id, err)
	}
	switch b.Status {
	case catalog.StatusFailed:
		return choose(s.now().Sub(b.CompletedAt) > s.o.SweepGrace), "", nil
	case catalog.StatusCompleted:
		dir, _ := path.Split(b.ManifestBlob)
		if dir == "" || !strings.HasPrefix(dir, tenant+"/"+id+"/") {
			return keepAll, "", nil // unknown layout: never delete a committed backup's blobs
		}
		return keepCommitted, dir, nil
	}
	return keepAll, "", nil
}

func choose(del bool) sweepDecision {
	if del {
		return deleteAll
	}
	return keepAll
}

// splitBackupBlob splits "<tenant>/<backupId>/<rest>" with valid ids.
func splitBackupBlob(name string) (tenant, id, rest string, ok bool) {
	tenant, after, ok1 := strings.Cut(name, "/")
	id, rest, ok2 := strings.Cut(after, "/")
	if !ok1 || !ok2 || !tenants.ValidID(tenant) || !catalog.ValidID(id) {
		return "", "", "", false
	}
	return tenant, id, rest, true
}
