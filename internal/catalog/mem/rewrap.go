package mem

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twinit/byok-backup/internal/catalog"
)

var (
	_ catalog.RewrapStore   = (*Rewraps)(nil)
	_ catalog.BackupScanner = (*Store)(nil)
)

// Rewraps is an in-memory [catalog.RewrapStore]. Use [NewRewraps].
type Rewraps struct {
	mu      sync.Mutex
	version int
	rows    table[*catalog.Rewrap]
}

// NewRewraps returns an empty store.
func NewRewraps() *Rewraps {
	return &Rewraps{rows: table[*catalog.Rewrap]{what: "rewrap", rows: map[key]*catalog.Rewrap{}}}
}

func (s *Rewraps) etag() string {
	s.version++
	return `W/"r` + strconv.Itoa(s.version) + `"`
}

func (s *Rewraps) CreateRewrap(ctx context.Context, r *catalog.Rewrap) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows.create(r, s.etag)
}

func (s *Rewraps) GetRewrap(ctx context.Context, tenant, id string) (*catalog.Rewrap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows.get(tenant, id)
}

func (s *Rewraps) UpdateRewrap(ctx context.Context, r *catalog.Rewrap) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows.update(r, s.etag)
}

func (s *Rewraps) ListRewraps(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RewrapPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, token, err := listPage(s.rows.rows, tenant, opts, (*catalog.Rewrap).Clone, func(*catalog.Rewrap) bool { return false })
	return catalog.RewrapPage{Rewraps: rows, ContinuationToken: token}, err
}

func (s *Rewraps) ActiveRewrap(ctx context.Context, tenant string) (*catalog.Rewrap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var newest *catalog.Rewrap
	for k, r := range s.rows.rows {
		if k.tenant == tenant && r.Active() && (newest == nil || r.RewrapID > newest.RewrapID) {
			newest = r
		}
	}
	if newest == nil {
		return nil, fmt.Errorf("no queued or running rewrap of tenant %s: %w", tenant, catalog.ErrNotFound)
	}
	return newest.Clone(), nil
}

// ScanBackups visits the tenant's backups with one of statuses (all when
// empty), oldest first; fn runs without the lock, so it may write rows.
func (s *Store) ScanBackups(ctx context.Context, tenant string, o catalog.ScanOptions, fn func(*catalog.Backup) error) error {
	statuses := o.Statuses
	s.mu.Lock()
	var ids []string
	for k, b := range s.backups.rows {
		if k.tenant == tenant && (len(statuses) == 0 || slices.Contains(statuses, b.Status)) {
			ids = append(ids, k.id)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(ids, strings.Compare)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := s.GetBackup(ctx, tenant, id)
		if err != nil {
			continue // deleted meanwhile
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}
