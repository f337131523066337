// Package mem is an in-memory [catalog.Store] for tests of the code built on
// the catalog. It follows the same contract as the Table Storage adapter
// (catalog/catalogtest proves it): conditional writes, ETags, newest-first
// paging.
package mem

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twinit/byok-backup/internal/catalog"
)

var _ catalog.Store = (*Store)(nil)

type key struct{ tenant, id string }

// Store is safe for concurrent use. The zero value is not usable; call [New].
type Store struct {
	mu       sync.Mutex
	version  int
	backups  map[key]*catalog.Backup
	restores map[key]*catalog.Restore
}

// New returns an empty store.
func New() *Store {
	return &Store{backups: map[key]*catalog.Backup{}, restores: map[key]*catalog.Restore{}}
}

func (s *Store) nextETag() string {
	s.version++
	return `W/"` + strconv.Itoa(s.version) + `"`
}

func (s *Store) CreateBackup(ctx context.Context, b *catalog.Backup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{b.Tenant, b.BackupID}
	if _, ok := s.backups[k]; ok {
		return fmt.Errorf("failed to create backup %s: %w", b.BackupID, catalog.ErrExists)
	}
	b.Normalize()
	b.ETag = s.nextETag()
	s.backups[k] = b.Clone()
	return nil
}

func (s *Store) GetBackup(ctx context.Context, tenant, backupID string) (*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.backups[key{tenant, backupID}]
	if !ok {
		return nil, fmt.Errorf("failed to read backup %s: %w", backupID, catalog.ErrNotFound)
	}
	return b.Clone(), nil
}

func (s *Store) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{b.Tenant, b.BackupID}
	cur, ok := s.backups[k]
	if !ok {
		return fmt.Errorf("failed to update backup %s: %w", b.BackupID, catalog.ErrNotFound)
	}
	if cur.ETag != b.ETag {
		return fmt.Errorf("failed to update backup %s: %w", b.BackupID, catalog.ErrConflict)
	}
	b.Normalize()
	b.ETag = s.nextETag()
	s.backups[k] = b.Clone()
	return nil
}

func (s *Store) ListBackups(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.BackupPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, token, err := listPage(s.backups, tenant, opts, (*catalog.Backup).Clone)
	return catalog.BackupPage{Backups: rows, ContinuationToken: token}, err
}

func (s *Store) ListRestores(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RestorePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, token, err := listPage(s.restores, tenant, opts, (*catalog.Restore).Clone)
	return catalog.RestorePage{Restores: rows, ContinuationToken: token}, err
}

// listPage is one newest-first page of tenant's rows; call with s.mu held.
func listPage[T any](rows map[key]T, tenant string, opts catalog.ListOptions, clone func(T) T) ([]T, string, error) {
	after, err := catalog.DecodeToken(opts.ContinuationToken)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for k := range rows {
		if k.tenant == tenant && (after == "" || k.id < after) {
			ids = append(ids, k.id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return -strings.Compare(a, b) })
	var token string
	if n := opts.PageSize(); len(ids) > n {
		ids = ids[:n]
		token = catalog.EncodeToken(ids[n-1])
	}
	var out []T
	for _, id := range ids {
		out = append(out, clone(rows[key{tenant, id}]))
	}
	return out, token, nil
}

func (s *Store) ActiveBackup(ctx context.Context, tenant string) (*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var newest *catalog.Backup
	for k, b := range s.backups {
		if k.tenant == tenant && (b.Status == catalog.StatusQueued || b.Status == catalog.StatusRunning) &&
			(newest == nil || b.BackupID > newest.BackupID) {
			newest = b
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("no queued or running backup of tenant %s: %w", tenant, catalog.ErrNotFound)
	}
	return newest.Clone(), nil
}

func (s *Store) StaleBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*catalog.Backup
	for _, b := range s.backups {
		if b.Status == catalog.StatusRunning && b.LastAlive().Before(before) {
			out = append(out, b.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *catalog.Backup) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.BackupID, b.BackupID)
	})
	return out, nil
}

func (s *Store) CreateRestore(ctx context.Context, r *catalog.Restore) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{r.Tenant, r.RestoreID}
	if _, ok := s.restores[k]; ok {
		return fmt.Errorf("failed to create restore %s: %w", r.RestoreID, catalog.ErrExists)
	}
	r.Normalize()
	r.ETag = s.nextETag()
	s.restores[k] = r.Clone()
	return nil
}

func (s *Store) GetRestore(ctx context.Context, tenant, restoreID string) (*catalog.Restore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.restores[key{tenant, restoreID}]
	if !ok {
		return nil, fmt.Errorf("failed to read restore %s: %w", restoreID, catalog.ErrNotFound)
	}
	return r.Clone(), nil
}

func (s *Store) UpdateRestore(ctx context.Context, r *catalog.Restore) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{r.Tenant, r.RestoreID}
	cur, ok := s.restores[k]
	if !ok {
		return fmt.Errorf("failed to update restore %s: %w", r.RestoreID, catalog.ErrNotFound)
	}
	if cur.ETag != r.ETag {
		return fmt.Errorf("failed to update restore %s: %w", r.RestoreID, catalog.ErrConflict)
	}
	r.Normalize()
	r.ETag = s.nextETag()
	s.restores[k] = r.Clone()
	return nil
}

func (s *Store) StaleRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*catalog.Restore
	for _, r := range s.restores {
		if r.State == catalog.RestoreRunning && r.LastAlive().Before(before) {
			out = append(out, r.Clone())
		}
	}
	slices.SortFunc(out, func(a, b *catalog.Restore) int {
		if c := strings.Compare(a.Tenant, b.Tenant); c != 0 {
			return c
		}
		return strings.Compare(a.RestoreID, b.RestoreID)
	})
	return out, nil
}
