package restore

import (
	"context"
	"errors"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// StartRequest asks for one restore or verification (API.md §2
// "Restores"). The caller has checked the fields' syntax and the caller's
// rights on both tenants.
type StartRequest struct {
	Tenant       string // the source tenant, whose backup is read
	BackupID     string
	TargetTenant string // where records are written; Tenant for a same-tenant restore
	Mode         catalog.Mode
	DryRun       bool
	Subject      string // who asked, for the log
}

// Start records a queued restore of a completed backup and enqueues its
// job. Errors are *errcode.Error: BackupNotFound, BackupIncomplete or
// ServiceUnavailable.
func (s *Service) Start(ctx context.Context, req StartRequest) (*catalog.Restore, error) {
	b, err := s.o.Catalog.GetBackup(ctx, req.Tenant, req.BackupID)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, errcode.Wrap(err, errcode.BackupNotFound, "Tenant %s has no backup %s: list its backups for the ids.", req.Tenant, req.BackupID)
	}
	if err != nil {
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The backup catalog could not be read: try again later.")
	}
	if b.Status == catalog.StatusDeleted || b.Status == catalog.StatusPurged {
		return nil, deletedError(b)
	}
	if !b.Restorable() {
		return nil, errcode.New(errcode.BackupIncomplete, "Backup %s is %s, not completed: only completed backups can be restored or verified.", b.BackupID, b.Status)
	}
	// A client that goes away between the row and its message must not
	// leave a queued row no message will ever run: from here the pair is
	// written whatever happens to the request.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	row := catalog.NewRestore(req.Tenant, req.BackupID, req.TargetTenant, req.Mode, req.DryRun, s.now())
	if err := s.o.Catalog.CreateRestore(ctx, row); err != nil {
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be recorded: try again later.")
	}
	if err := s.enqueue(ctx, row); err != nil {
		// No message will ever run it: record that rather than leave it queued.
		if ferr := row.Fail(s.now(), errcode.Detail{Code: errcode.ServiceUnavailable, Message: "The restore could not be queued. Start it again."}); ferr == nil {
			_ = s.o.Catalog.UpdateRestore(ctx, row)
		}
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be queued: try again later.")
	}
	s.log.InfoContext(ctx, "restore requested", "tenant", req.Tenant, "restoreId", row.RestoreID, "backupId", row.BackupID,
		"targetTenant", req.TargetTenant, "mode", req.Mode, "dryRun", req.DryRun, "subject", req.Subject)
	return row, nil
}

// enqueue sends the restore's job message.
func (s *Service) enqueue(ctx context.Context, r *catalog.Restore) error {
	return s.o.Queue.Enqueue(ctx, s.o.QueueName, jobqueue.RestoreJob{Tenant: r.Tenant, RestoreID: r.RestoreID})
}

// List returns a page of the restores whose SOURCE is tenant (where Start
// put them, cross-tenant ones included), newest first, with the Backups
// list's paging rules.
func (s *Service) List(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RestorePage, error) {
	page, err := s.o.Catalog.ListRestores(ctx, tenant, opts)
	if errors.Is(err, catalog.ErrInvalidToken) {
		return page, err
	}
	if err != nil {
		return page, errcode.Wrap(err, errcode.ServiceUnavailable, "The restores could not be listed: try again later.")
	}
	return page, nil
}

// Get returns one restore of source tenant: NotFound when there is none.
func (s *Service) Get(ctx context.Context, tenant, id string) (*catalog.Restore, error) {
	row, err := s.o.Catalog.GetRestore(ctx, tenant, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, errcode.Wrap(err, errcode.NotFound, "Tenant %s has no restore %s.", tenant, id)
	}
	if err != nil {
		return nil, errcode.Wrap(err, errcode.ServiceUnavailable, "The restore could not be read: try again later.")
	}
	return row, nil
}

// deletedError is BackupDeleted for a deleted or purged backup (API.md §6).
func deletedError(b *catalog.Backup) error {
	if b.Status == catalog.StatusPurged {
		return errcode.New(errcode.BackupDeleted, "Backup %s was deleted and its data purged: it can no longer be restored.", b.BackupID)
	}
	return errcode.New(errcode.BackupDeleted, "Backup %s is deleted: undelete it (POST …/backups/%s/undelete) before restoring it.", b.BackupID, b.BackupID)
}
