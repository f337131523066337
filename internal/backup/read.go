package backup

import (
	"context"
	"errors"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/errcode"
)

// List returns one page of tenant's backups, newest first.
func (s *Service) List(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.BackupPage, error) {
	return s.o.Catalog.ListBackups(ctx, tenant, opts)
}

// Get returns one backup of tenant: BackupNotFound when there is none.
func (s *Service) Get(ctx context.Context, tenant, id string) (*catalog.Backup, error) {
	b, err := s.o.Catalog.GetBackup(ctx, tenant, id)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, errcode.Wrap(err, errcode.BackupNotFound, "No backup %s exists for this tenant.", id)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}
