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
	backups  table[*catalog.Backup]
	restores table[*catalog.Restore]
}

// New returns an empty store.
func New() *Store {
	return &Store{
		backups:  table[*catalog.Backup]{what: "backup", rows: map[key]*catalog.Backup{}},
		restores: table[*catalog.Restore]{what: "restore", rows: map[key]*catalog.Restore{}},
	}
}

func (s *Store) nextETag() string {
	s.version++
	return `W/"` + strconv.Itoa(s.version) + `"`
}

// table is one job kind's rows; its methods are called with Store.mu held
// (the ETag counter is the store's, shared by both kinds).
type table[T catalog.Row[T]] struct {
	what string // "backup", "restore": error messages
	rows map[key]T
}

func (t table[T]) create(row T, etag func() string) error {
	tenant, id := row.Key()
	k := key{tenant, id}
	if _, ok := t.rows[k]; ok {
		return fmt.Errorf("failed to create %s %s: %w", t.what, id, catalog.ErrExists)
	}
	row.Normalize()
	row.JobPart().ETag = etag()
	t.rows[k] = row.Clone()
	return nil
}

func (t table[T]) get(tenant, id string) (T, error) {
	row, ok := t.rows[key{tenant, id}]
	if !ok {
		var zero T
		return zero, fmt.Errorf("failed to read %s %s: %w", t.what, id, catalog.ErrNotFound)
	}
	return row.Clone(), nil
}

func (t table[T]) update(row T, etag func() string) error {
	tenant, id := row.Key()
	k := key{tenant, id}
	cur, ok := t.rows[k]
	if !ok {
		return fmt.Errorf("failed to update %s %s: %w", t.what, id, catalog.ErrNotFound)
	}
	if cur.JobPart().ETag != row.JobPart().ETag {
		return fmt.Errorf("failed to update %s %s: %w", t.what, id, catalog.ErrConflict)
	}
	row.Normalize()
	row.JobPart().ETag = etag()
	t.rows[k] = row.Clone()
	return nil
}

// stale is the running rows whose attempt last proved alive before
// before, by tenant and id.
func (t table[T]) stale(before time.Time) []T {
	return t.where(func(row T) bool {
		return row.Phase() == catalog.PhaseRunning && row.JobPart().LastAlive().Before(before)
	})
}

// queued is the queued rows waiting since before before, by tenant and id.
func (t table[T]) queued(before time.Time, since func(T) time.Time) []T {
	return t.where(func(row T) bool { return row.Phase() == catalog.PhaseQueued && since(row).Before(before) })
}

// where is the rows matching ok, cloned, by tenant and id.
func (t table[T]) where(ok func(T) bool) []T {
	var keys []key
	for k, row := range t.rows {
		if ok(row) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.tenant, b.tenant); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var out []T
	for _, k := range keys {
		out = append(out, t.rows[k].Clone())
	}
	return out
}

func (s *Store) CreateBackup(ctx context.Context, b *catalog.Backup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backups.create(b, s.nextETag)
}

func (s *Store) GetBackup(ctx context.Context, tenant, backupID string) (*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backups.get(tenant, backupID)
}

func (s *Store) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backups.update(b, s.nextETag)
}

func (s *Store) StaleBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backups.stale(before), nil
}

func (s *Store) QueuedBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backups.queued(before, (*catalog.Backup).WaitingSince), nil
}

func (s *Store) CreateRestore(ctx context.Context, r *catalog.Restore) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores.create(r, s.nextETag)
}

func (s *Store) GetRestore(ctx context.Context, tenant, restoreID string) (*catalog.Restore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores.get(tenant, restoreID)
}

func (s *Store) UpdateRestore(ctx context.Context, r *catalog.Restore) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores.update(r, s.nextETag)
}

func (s *Store) StaleRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores.stale(before), nil
}

func (s *Store) QueuedRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores.queued(before, (*catalog.Restore).WaitingSince), nil
}

func (s *Store) ListBackups(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.BackupPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, token, err := listPage(s.backups.rows, tenant, opts, (*catalog.Backup).Clone, opts.Hidden)
	return catalog.BackupPage{Backups: rows, ContinuationToken: token}, err
}

func (s *Store) ListRestores(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RestorePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, token, err := listPage(s.restores.rows, tenant, opts, (*catalog.Restore).Clone, func(*catalog.Restore) bool { return false })
	return catalog.RestorePage{Restores: rows, ContinuationToken: token}, err
}

// listPage is one newest-first page of tenant's rows; call with s.mu held.
func listPage[T any](rows map[key]T, tenant string, opts catalog.ListOptions, clone func(T) T, hidden func(T) bool) ([]T, string, error) {
	after, err := catalog.DecodeToken(opts.ContinuationToken)
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for k := range rows {
		if k.tenant == tenant && (after == "" || k.id < after) && !hidden(rows[k]) {
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
	for k, b := range s.backups.rows {
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

func (s *Store) BackupTenants(ctx context.Context, fn func(tenant string) error) error {
	s.mu.Lock()
	seen := map[string]bool{}
	var tenants []string
	for k := range s.backups.rows {
		if !seen[k.tenant] {
			seen[k.tenant] = true
			tenants = append(tenants, k.tenant)
		}
	}
	s.mu.Unlock()
	slices.Sort(tenants)
	for _, t := range tenants {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
