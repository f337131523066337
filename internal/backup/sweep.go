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
	"github.com/twinit/byok-backup/internal/job"
	"github.com/twinit/byok-backup/internal/tenants"
)

// SweepReport counts what one sweep did.
type SweepReport struct {
	// StaleFailed running rows whose heartbeat was older than SweepGrace
	// were marked failed (their job was not retried in time).
	StaleFailed int
	// DeletedBackups failed backups had their blobs deleted (their rows
	// are kept); DeletedAttempts abandoned attempt directories of completed
	// backups were deleted; DeletedBlobs counts the blobs of both.
	DeletedBackups, DeletedAttempts, DeletedBlobs int
	// Orphans backup prefixes, holding OrphanBlobs blobs, have no catalog
	// row: they are never deleted automatically, only reported.
	Orphans, OrphanBlobs int
	// Suspect backups were kept although their row would allow a deletion,
	// because storage contradicts the row: a failed backup with a manifest
	// (perhaps a committed backup whose row is older than its blobs), or a
	// completed backup whose committed manifest is missing.
	Suspect int
	// BreakerTenants are the tenants for which nothing was deleted because
	// the run would have deleted the blobs of more than MaxDeleteFraction
	// of their backups.
	BreakerTenants int
}

// Sweep fails running backups whose worker is long gone and deletes
// garbage under the backups container, but only where a catalog row says
// it is garbage (API.md §6): the blobs of a backup whose row is failed
// for longer than FailedRetention, and the attempt directories of a
// completed backup other than the one its row committed. A prefix without
// a row is never deleted, only counted and logged: a renamed, emptied or
// rolled-back Backups table must not turn every backup into garbage. Per
// tenant, a run that would delete the blobs of more than MaxDeleteFraction
// of the tenant's backups deletes nothing for it and logs why. Queued and
// running backups are left alone. It lists the whole container, one page
// at a time, and reads one row per backup id.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	now := s.now()
	_, failed, err := job.Stale[*catalog.Backup]{Kind: "backup", List: s.o.Catalog.StaleBackups, Write: s.o.Catalog.UpdateBackup,
		Cause: func(*catalog.Backup) errcode.Detail {
			return errcode.Detail{Code: errcode.Internal,
				Message: "The backup stopped (its worker was interrupted) and was not resumed. Its data was discarded; start a new backup."}
		}}.Fail(ctx, now, now.Add(-s.o.SweepGrace), s.log)
	rep.StaleFailed = failed
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}

	// Plan while listing, delete after: deleting during a listing would
	// move its continuation point. The listing is in name order, so one
	// backup's blobs, and one tenant's backups, come in one run.
	sw := sweeper{s: s, rep: &rep, orphanTenants: map[string]bool{}}
	err = s.blobs.List(ctx, "", func(info blobstore.Info) error {
		tenant, id, rest, ok := splitBackupBlob(info.Name)
		if !ok {
			return nil // not ours; never delete what we can't name
		}
		if sw.cur == nil || sw.cur.tenant != tenant || sw.cur.id != id {
			if err := sw.endBackup(ctx); err != nil {
				return err
			}
			if sw.tenant.name != tenant {
				sw.endTenant(ctx)
				sw.tenant = tenantPlan{name: tenant}
			}
			sw.cur = &backupBlobs{tenant: tenant, id: id}
		}
		sw.cur.add(info.Name, rest)
		return nil
	})
	if err == nil {
		err = sw.endBackup(ctx)
	}
	if err != nil {
		// What was planned from rows read so far still stands; only the
		// tenant being listed is left whole for the next run.
		errs = append(errs, fmt.Errorf("failed to list the backups container: %w", err))
	} else {
		sw.endTenant(ctx)
	}

	for _, d := range sw.deletions {
		deleted := 0
		for _, p := range d.prefixes {
			n, err := s.blobs.DeletePrefix(ctx, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("failed to delete blobs of backup %s/%s: %w", d.tenant, d.id, err))
				continue
			}
			deleted++
			rep.DeletedBlobs += n
		}
		if d.failed {
			if deleted == len(d.prefixes) {
				rep.DeletedBackups++
			}
			s.log.InfoContext(ctx, "blobs of a failed backup deleted", "tenant", d.tenant, "backupId", d.id, "parts", deleted)
		} else {
			rep.DeletedAttempts += deleted
			s.log.InfoContext(ctx, "abandoned attempts of a completed backup deleted", "tenant", d.tenant, "backupId", d.id, "attempts", deleted)
		}
	}
	if rep.Orphans > 0 {
		s.log.WarnContext(ctx, "backup blobs without a catalog row were found and kept: they are never deleted automatically; check TABLE_BACKUPS and the table's contents",
			"orphanBackups", rep.Orphans, "orphanBlobs", rep.OrphanBlobs, "tenants", len(sw.orphanTenants))
	}
	if rep.Suspect > 0 {
		s.log.WarnContext(ctx, "backup blobs that contradict their catalog row were kept", "backups", rep.Suspect)
	}
	return rep, errors.Join(errs...)
}

// backupBlobs is what the listing found under one <tenant>/<backupId>/.
type backupBlobs struct {
	tenant, id string
	blobs      int
	// units are the attempt directories ("<prefix><attempt>/") and loose
	// blobs, in listing order; manifests the units holding a manifest.
	units     []string
	manifests map[string]bool
}

func (b *backupBlobs) prefix() string { return b.tenant + "/" + b.id + "/" }

func (b *backupBlobs) add(name, rest string) {
	b.blobs++
	unit, manifest := name, isManifest(rest) // a loose blob directly under the backup
	if attempt, tail, ok := strings.Cut(rest, "/"); ok {
		unit, manifest = b.prefix()+attempt+"/", isManifest(tail)
	}
	if len(b.units) == 0 || b.units[len(b.units)-1] != unit {
		b.units = append(b.units, unit)
	}
	if manifest {
		if b.manifests == nil {
			b.manifests = map[string]bool{}
		}
		b.manifests[unit] = true
	}
}

// tenantPlan collects one tenant's deletions until the breaker has seen
// all of its backups.
type tenantPlan struct {
	name string
	// rows counts the tenant's backups that have blobs and a row; failed
	// those whose whole blobs the run would delete.
	rows, failed int
	deletions    []sweepDeletion
}

type sweepDeletion struct {
	tenant, id string
	failed     bool // a failed backup's blobs, else abandoned attempts
	prefixes   []string
}

type sweeper struct {
	s             *Service
	rep           *SweepReport
	cur           *backupBlobs
	tenant        tenantPlan
	deletions     []sweepDeletion
	orphanTenants map[string]bool
}

// endBackup reads the row of the backup just listed and plans what its row
// allows deleting.
func (w *sweeper) endBackup(ctx context.Context) error {
	b := w.cur
	if b == nil {
		return nil
	}
	w.cur = nil
	row, err := w.s.o.Catalog.GetBackup(ctx, b.tenant, b.id)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		w.rep.Orphans++
		w.rep.OrphanBlobs += b.blobs
		w.orphanTenants[b.tenant] = true
		return nil
	case err != nil:
		return fmt.Errorf("failed to read backup %s/%s: %w", b.tenant, b.id, err)
	}
	w.tenant.rows++
	switch row.Status {
	case catalog.StatusFailed:
		if row.CompletedAt.IsZero() || w.s.now().Sub(row.CompletedAt) <= w.s.o.FailedRetention {
			return nil
		}
		if len(b.manifests) > 0 {
			// A failed attempt never gets this far without committing, so
			// this is more likely a committed backup under a row that went
			// back in time.
			w.rep.Suspect++
			return nil
		}
		w.tenant.failed++
		w.tenant.deletions = append(w.tenant.deletions, sweepDeletion{tenant: b.tenant, id: b.id, failed: true, prefixes: b.units})
	case catalog.StatusCompleted:
		dir, _ := path.Split(row.ManifestBlob)
		if dir == "" || !strings.HasPrefix(dir, b.prefix()) || dir == b.prefix() {
			return nil // unknown layout: never delete a committed backup's blobs
		}
		if !b.manifests[dir] || !isManifest(strings.TrimPrefix(row.ManifestBlob, dir)) {
			w.rep.Suspect++ // the row names a manifest that is not there
			return nil
		}
		var abandoned []string
		for _, u := range b.units {
			if u != dir {
				abandoned = append(abandoned, u)
			}
		}
		if len(abandoned) > 0 {
			w.tenant.deletions = append(w.tenant.deletions, sweepDeletion{tenant: b.tenant, id: b.id, prefixes: abandoned})
		}
	}
	return nil
}

// endTenant applies the breaker to the tenant just listed. Only whole
// backups count: abandoned attempts are deleted only beside a committed
// manifest that stays, so they never take a backup with them.
func (w *sweeper) endTenant(ctx context.Context) {
	t := w.tenant
	w.tenant = tenantPlan{}
	if len(t.deletions) == 0 {
		return
	}
	if float64(t.failed) > w.s.o.MaxDeleteFraction*float64(t.rows) {
		w.rep.BreakerTenants++
		w.s.log.WarnContext(ctx, "backup sweep deleted nothing for the tenant: it would have deleted the blobs of more than RETENTION_MAX_DELETE_FRACTION of the tenant's backups",
			"tenant", t.name, "wouldDelete", t.failed, "backups", t.rows, "maxDeleteFraction", w.s.o.MaxDeleteFraction)
		return
	}
	w.deletions = append(w.deletions, t.deletions...)
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

// isManifest reports whether a blob name's last part is a manifest: the
// backup's own, or a re-wrapped one (rewrap-manifest-<n>, FORMAT.md §10).
func isManifest(base string) bool {
	if base == "manifest" {
		return true
	}
	n, ok := strings.CutPrefix(base, "rewrap-manifest-")
	return ok && len(n) == 6 && strings.Trim(n, "0123456789") == ""
}
