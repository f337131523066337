package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/retention"
)

// RetentionSetting is a tenant's effective retention policy and where it
// comes from (API.md §6: "tenant" or "default").
type RetentionSetting struct {
	retention.Policy
	Source string `json:"source"`
}

// Policy sources.
const (
	SourceTenant  = "tenant"
	SourceDefault = "default"
)

func (s *Service) policies() (retention.Store, error) {
	if s.o.Policies == nil {
		return nil, errors.New("backup: retention needs Options.Policies")
	}
	return s.o.Policies, nil
}

// GetRetention returns the tenant's policy, or RETENTION_DEFAULT.
func (s *Service) GetRetention(ctx context.Context, tenant string) (RetentionSetting, error) {
	store, err := s.policies()
	if err != nil {
		return RetentionSetting{}, err
	}
	p, ok, err := store.GetPolicy(ctx, tenant)
	if err != nil {
		return RetentionSetting{}, errcode.Wrap(err, errcode.ServiceUnavailable, "The retention policy could not be read: try again later.")
	}
	if !ok {
		return RetentionSetting{Policy: s.o.RetentionDefault, Source: SourceDefault}, nil
	}
	return RetentionSetting{Policy: p, Source: SourceTenant}, nil
}

// PutRetention stores the tenant's whole policy.
func (s *Service) PutRetention(ctx context.Context, tenant string, p retention.Policy) (RetentionSetting, error) {
	store, err := s.policies()
	if err != nil {
		return RetentionSetting{}, err
	}
	if err := p.Validate(); err != nil {
		return RetentionSetting{}, errcode.Wrap(err, errcode.InvalidRequest, "Every keep count must be a whole number from 0 to %d.", retention.MaxCount)
	}
	if err := store.PutPolicy(ctx, tenant, p); err != nil {
		return RetentionSetting{}, errcode.Wrap(err, errcode.ServiceUnavailable, "The retention policy could not be stored: try again later.")
	}
	s.log.InfoContext(ctx, "retention policy set", "tenant", tenant, "policy", p.String())
	return RetentionSetting{Policy: p, Source: SourceTenant}, nil
}

// Delete soft-deletes one completed backup by hand (DELETE …/backups/{id}):
// Conflict for the tenant's newest completed backup or a backup that is
// not completed.
func (s *Service) Delete(ctx context.Context, tenant, id, subject string) (*catalog.Backup, error) {
	b, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if b.Status != catalog.StatusCompleted {
		return nil, errcode.New(errcode.Conflict, "Backup %s is %s: only a completed backup can be deleted.", id, b.Status)
	}
	newest, err := s.newestCompleted(ctx, tenant)
	if err != nil {
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The backup catalog could not be read: try again later.")
	}
	if newest == id {
		return nil, errcode.New(errcode.Conflict, "Backup %s is the tenant's newest completed backup, which is never deleted.", id)
	}
	now := s.now()
	if err := b.SoftDelete(now, s.purgeAfter(now), subject); err != nil {
		return nil, errcode.Wrap(err, errcode.Conflict, "Backup %s can't be deleted now: read it again and retry.", id)
	}
	if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
		return nil, rowWriteError(err, id)
	}
	s.log.InfoContext(ctx, "backup deleted", "tenant", tenant, "backupId", id, "subject", subject, "purgeAfter", b.PurgeAfter)
	return b, nil
}

// Undelete brings a deleted backup back to completed, before its purgeAfter
// and before its purge started; Conflict otherwise.
func (s *Service) Undelete(ctx context.Context, tenant, id, subject string) (*catalog.Backup, error) {
	b, err := s.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if b.Status == catalog.StatusCompleted {
		return b, nil // undeleting twice is not an error
	}
	if !b.Undeletable(s.now()) {
		if b.Status == catalog.StatusDeleted || b.Status == catalog.StatusPurged {
			return nil, errcode.New(errcode.Conflict, "Backup %s is past its soft-delete window (its data is being or was purged): it can no longer be undeleted.", id)
		}
		return nil, errcode.New(errcode.Conflict, "Backup %s is %s, not deleted: there is nothing to undelete.", id, b.Status)
	}
	if err := b.Undelete(s.now()); err != nil {
		return nil, errcode.Wrap(err, errcode.Conflict, "Backup %s can't be undeleted.", id)
	}
	if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
		return nil, rowWriteError(err, id)
	}
	s.log.InfoContext(ctx, "backup undeleted", "tenant", tenant, "backupId", id, "subject", subject)
	return b, nil
}

func rowWriteError(err error, id string) error {
	if errors.Is(err, catalog.ErrConflict) {
		return errcode.Wrap(err, errcode.Conflict, "Backup %s changed meanwhile: read it again and retry.", id)
	}
	return errcode.Wrap(err, errcode.ServiceUnavailable, "The backup catalog could not be written: try again later.")
}

func (s *Service) purgeAfter(now time.Time) time.Time {
	if s.o.SoftDeleteWindow > 0 {
		return now.Add(s.o.SoftDeleteWindow)
	}
	return now.AddDate(0, 0, s.o.SoftDeleteDays)
}

// newer orders completed backups as the policy does: completedAt, then id.
func newer(a, b retention.Item) bool {
	if !a.CompletedAt.Equal(b.CompletedAt) {
		return a.CompletedAt.After(b.CompletedAt)
	}
	return a.ID > b.ID
}

// newestCompleted is the id of the tenant's newest completed backup, "" if none.
func (s *Service) newestCompleted(ctx context.Context, tenant string) (string, error) {
	var best retention.Item
	err := s.o.Catalog.ScanBackups(ctx, tenant, catalog.ScanOptions{}, func(b *catalog.Backup) error {
		if it := (retention.Item{ID: b.BackupID, CompletedAt: b.CompletedAt}); b.Status == catalog.StatusCompleted && (best.ID == "" || newer(it, best)) {
			best = it
		}
		return nil
	})
	return best.ID, err
}

// RetentionReport counts what one retention run did.
type RetentionReport struct {
	Tenants int
	// SoftDeleted completed backups no rule kept became deleted; Purged
	// deleted backups past purgeAfter lost their blobs (PurgedBlobs) and
	// became purged.
	SoftDeleted, Purged, PurgedBlobs int
	// BreakerTenants are tenants left alone because the run would have
	// deleted more than MaxDeleteFraction of their completed backups.
	BreakerTenants int
	// Skipped rows changed under the run (ETag conflicts) and were left
	// for the next run.
	Skipped int
}

// RunRetention is the BackupRetention timer: the retention run, then the
// sweep (failed backups' blobs after 24 h, abandoned attempts).
func (s *Service) RunRetention(ctx context.Context) error {
	rep, err := s.Retention(ctx)
	sweep, serr := s.Sweep(ctx)
	s.log.InfoContext(ctx, "retention run", "tenants", rep.Tenants, "softDeleted", rep.SoftDeleted, "purged", rep.Purged,
		"purgedBlobs", rep.PurgedBlobs, "breakerTenants", rep.BreakerTenants, "skipped", rep.Skipped,
		"sweptBackups", sweep.DeletedBackups, "sweptAttempts", sweep.DeletedAttempts, "orphanBackups", sweep.Orphans)
	return errors.Join(err, serr)
}

// Retention applies every tenant's policy (API.md §6), tenant by tenant:
// it soft-deletes the completed backups no rule keeps and purges deleted
// backups past purgeAfter (and finishes purges a crash interrupted). The
// tenant's newest completed backup is never deleted, queued and running
// backups are never touched, and a tenant whose run would delete more
// than MaxDeleteFraction of its completed backups is left alone entirely.
// One tenant's failure doesn't stop the others.
func (s *Service) Retention(ctx context.Context) (RetentionReport, error) {
	var rep RetentionReport
	var errs []error
	err := s.o.Catalog.BackupTenants(ctx, func(tenant string) error {
		rep.Tenants++
		if err := s.retainTenant(ctx, tenant, &rep); err != nil {
			errs = append(errs, fmt.Errorf("retention of tenant %s: %w", tenant, err))
		}
		return ctx.Err()
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("failed to list the tenants with backups: %w", err))
	}
	return rep, errors.Join(errs...)
}

func (s *Service) retainTenant(ctx context.Context, tenant string, rep *RetentionReport) error {
	setting, err := s.GetRetention(ctx, tenant)
	if err != nil {
		return err
	}
	now := s.now()
	// Stream the partition; keep only what the policy needs of completed
	// backups (id and time) and the ids of purge candidates.
	var completed []retention.Item
	var purge []string
	err = s.o.Catalog.ScanBackups(ctx, tenant, catalog.ScanOptions{}, func(b *catalog.Backup) error {
		switch {
		case b.Status == catalog.StatusCompleted:
			completed = append(completed, retention.Item{ID: b.BackupID, CompletedAt: b.CompletedAt})
		case b.Purgeable(now):
			purge = append(purge, b.BackupID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	remove := retention.Apply(setting.Policy, completed) // sorts completed newest first
	if len(completed) > 0 && len(remove) > 0 && remove[0] == completed[0].ID {
		remove = remove[1:] // never the newest (Apply already keeps it; belt and braces)
	}
	if float64(len(remove)) > s.o.MaxDeleteFraction*float64(len(completed)) {
		rep.BreakerTenants++
		s.log.WarnContext(ctx, "retention did nothing for the tenant: it would have deleted more than RETENTION_MAX_DELETE_FRACTION of the tenant's completed backups (a policy slip or a clock jump?)",
			"tenant", tenant, "wouldDelete", len(remove), "completed", len(completed),
			"maxDeleteFraction", s.o.MaxDeleteFraction, "policy", setting.Policy.String(), "source", setting.Source)
		return nil
	}
	// Row writes are independent: BACKUP_PARALLELISM of them at a time.
	var mu sync.Mutex
	var errs []error
	each := func(ids []string, fn func(id string, rep *RetentionReport) error) {
		sem := make(chan struct{}, s.o.Parallelism)
		var wg sync.WaitGroup
		for _, id := range ids {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var r RetentionReport
				err := fn(id, &r)
				mu.Lock()
				defer mu.Unlock()
				rep.add(r)
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
	}
	each(remove, func(id string, r *RetentionReport) error { return s.retentionDelete(ctx, tenant, id, now, r) })
	each(purge, func(id string, r *RetentionReport) error { return s.purge(ctx, tenant, id, r) })
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *RetentionReport) add(o RetentionReport) {
	r.SoftDeleted += o.SoftDeleted
	r.Purged += o.Purged
	r.PurgedBlobs += o.PurgedBlobs
	r.Skipped += o.Skipped
}

// retentionDelete soft-deletes one backup the policy doesn't keep,
// re-reading its row: a row that changed since the scan is left alone.
func (s *Service) retentionDelete(ctx context.Context, tenant, id string, now time.Time, rep *RetentionReport) error {
	b, err := s.o.Catalog.GetBackup(ctx, tenant, id)
	if err != nil {
		return fmt.Errorf("failed to read backup %s: %w", id, err)
	}
	if b.Status != catalog.StatusCompleted {
		rep.Skipped++
		return nil
	}
	if err := b.SoftDelete(now, s.purgeAfter(now), catalog.DeletedByRetention); err != nil {
		return err
	}
	if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			rep.Skipped++
			return nil
		}
		return fmt.Errorf("failed to soft-delete backup %s: %w", id, err)
	}
	rep.SoftDeleted++
	return nil
}

// purge deletes a deleted backup's blobs in an order a crash can interrupt
// anywhere: (1) the row records that the purge started, so from now on the
// backup can't be undeleted; (2) every blob under <tenant>/<backupId>/ is
// deleted; (3) the row says purged. A kill after (1) or (2) leaves a
// deleted row that the next run picks up (Purgeable) and finishes; at no
// point does a completed row lack blobs.
func (s *Service) purge(ctx context.Context, tenant, id string, rep *RetentionReport) error {
	now := s.now()
	b, err := s.o.Catalog.GetBackup(ctx, tenant, id)
	if err != nil {
		return fmt.Errorf("failed to read backup %s: %w", id, err)
	}
	if !b.Purgeable(now) {
		rep.Skipped++ // undeleted meanwhile
		return nil
	}
	if b.PurgeStartedAt.IsZero() {
		if err := b.StartPurge(now); err != nil {
			return err
		}
		if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
			if errors.Is(err, catalog.ErrConflict) {
				rep.Skipped++
				return nil
			}
			return fmt.Errorf("failed to start the purge of backup %s: %w", id, err)
		}
	}
	n, err := s.blobs.DeletePrefix(ctx, tenant+"/"+id+"/")
	rep.PurgedBlobs += n
	if err != nil {
		return fmt.Errorf("failed to delete the blobs of backup %s: %w", id, err)
	}
	if err := b.Purge(s.now()); err != nil {
		return err
	}
	if err := s.o.Catalog.UpdateBackup(ctx, b); err != nil {
		return fmt.Errorf("failed to mark backup %s purged: %w", id, err)
	}
	rep.Purged++
	s.log.InfoContext(ctx, "deleted backup purged", "tenant", tenant, "backupId", id, "blobs", n)
	return nil
}
