// Package aztable is the Table Storage [catalog.Store]: the Backups and
// Restores tables, PartitionKey = tenant id, RowKey = backup or restore id.
// It classifies storage errors into the catalog's sentinels by table error
// code, never by message text.
package aztable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/catalog"
)

var _ catalog.Store = (*Store)(nil)

// Store is safe for concurrent use.
type Store struct {
	backups, restores *aztables.Client
}

// New returns a Store over the Backups and Restores table clients
// (constructed by the caller, e.g. ServiceClient.NewClient("Backups")).
func New(backups, restores *aztables.Client) *Store {
	return &Store{backups: backups, restores: restores}
}

// CreateTables creates both tables if they are missing; call it once at startup.
func (s *Store) CreateTables(ctx context.Context) error {
	for _, c := range []*aztables.Client{s.backups, s.restores} {
		if _, err := c.CreateTable(ctx, nil); err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
			return fmt.Errorf("failed to create catalog table: %w", err)
		}
	}
	return nil
}

// classify maps a storage error to a catalog sentinel, keeping the cause in
// the chain for logs. TableNotFound stays unclassified on purpose: a missing
// table is a deployment fault, not a missing backup.
func classify(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case azerr.HasTableCode(err, aztables.EntityAlreadyExists):
		return fmt.Errorf("%w: %w", catalog.ErrExists, err)
	case azerr.HasTableCode(err, aztables.EntityNotFound, aztables.ResourceNotFound):
		return fmt.Errorf("%w: %w", catalog.ErrNotFound, err)
	case azerr.HasTableCode(err, aztables.UpdateConditionNotSatisfied), re.StatusCode == 412:
		return fmt.Errorf("%w: %w", catalog.ErrConflict, err)
	}
	return err
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *Store) add(ctx context.Context, c *aztables.Client, what, id string, entity []byte) (string, error) {
	resp, err := c.AddEntity(ctx, entity, nil)
	if err != nil {
		return "", fmt.Errorf("failed to create %s %s: %w", what, id, classify(err))
	}
	return string(resp.ETag), nil
}

func (s *Store) update(ctx context.Context, c *aztables.Client, what, id, etag string, entity []byte) (string, error) {
	if etag == "" {
		// An update without a version would overwrite blindly; callers must
		// read (or create) the row first.
		return "", fmt.Errorf("failed to update %s %s without an ETag: %w", what, id, catalog.ErrConflict)
	}
	e := azcore.ETag(etag)
	resp, err := c.UpdateEntity(ctx, entity, &aztables.UpdateEntityOptions{IfMatch: &e, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return "", fmt.Errorf("failed to update %s %s: %w", what, id, classify(err))
	}
	return string(resp.ETag), nil
}

func (s *Store) CreateBackup(ctx context.Context, b *catalog.Backup) error {
	b.Normalize()
	ent, err := backupEntity(b)
	if err != nil {
		return err
	}
	etag, err := s.add(ctx, s.backups, "backup", b.BackupID, ent)
	if err != nil {
		return err
	}
	b.ETag = etag
	return nil
}

func (s *Store) GetBackup(ctx context.Context, tenant, backupID string) (*catalog.Backup, error) {
	resp, err := s.backups.GetEntity(ctx, tenant, backupID, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read backup %s: %w", backupID, classify(err))
	}
	return decodeBackup(resp.Value, string(resp.ETag))
}

func (s *Store) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	b.Normalize()
	ent, err := backupEntity(b)
	if err != nil {
		return err
	}
	etag, err := s.update(ctx, s.backups, "backup", b.BackupID, b.ETag, ent)
	if err != nil {
		return err
	}
	b.ETag = etag
	return nil
}

// ListBackups pages newest first; see the catalog package doc for the
// method and its cost.
func (s *Store) ListBackups(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.BackupPage, error) {
	rows, token, err := listPage(ctx, s.backups, "backups", tenant, opts, decodeBackup, func(b *catalog.Backup) string { return b.BackupID })
	return catalog.BackupPage{Backups: rows, ContinuationToken: token}, err
}

// ListRestores pages newest first, exactly as ListBackups.
func (s *Store) ListRestores(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RestorePage, error) {
	rows, token, err := listPage(ctx, s.restores, "restores", tenant, opts, decodeRestore, func(r *catalog.Restore) string { return r.RestoreID })
	return catalog.RestorePage{Restores: rows, ContinuationToken: token}, err
}

// listPage reads one newest-first page of a tenant's partition of c in two
// passes (catalog package doc, "Listing newest first").
func listPage[T any](ctx context.Context, c *aztables.Client, what, tenant string, opts catalog.ListOptions,
	decode func(raw []byte, etag string) (T, error), idOf func(T) string) ([]T, string, error) {
	after, err := catalog.DecodeToken(opts.ContinuationToken)
	if err != nil {
		return nil, "", err
	}
	n := opts.PageSize()
	filter := "PartitionKey eq " + quote(tenant)
	if after != "" {
		filter += " and RowKey lt " + quote(after)
	}
	// Pass 1: keys only, ascending; keep the newest n+1 (the extra one says
	// whether another page follows).
	sel := "RowKey"
	var ids []string
	pager := c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("failed to list %s ids of tenant %s: %w", what, tenant, classify(err))
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, "", fmt.Errorf("failed to decode a key of %s: %w", what, err)
			}
			ids = append(ids, e.RowKey)
		}
		if len(ids) > 2*(n+1) {
			ids = slices.Clone(ids[len(ids)-(n+1):])
		}
	}
	var token string
	if len(ids) > n {
		ids = ids[len(ids)-n:]
		token = catalog.EncodeToken(ids[0])
	}
	if len(ids) == 0 {
		return nil, token, nil
	}
	// Pass 2: the page's rows in one range query.
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	filter = "PartitionKey eq " + quote(tenant) + " and RowKey ge " + quote(ids[0]) + " and RowKey le " + quote(ids[len(ids)-1])
	pager = c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []T
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("failed to list %s of tenant %s: %w", what, tenant, classify(err))
		}
		for _, raw := range page.Entities {
			row, err := decode(raw, "")
			if err != nil {
				return nil, "", err
			}
			// A row inserted between the passes is left for the next listing.
			if want[idOf(row)] {
				out = append(out, row)
			}
		}
	}
	slices.Reverse(out)
	return out, token, nil
}

// ActiveBackup filters the tenant's partition server-side on status, so
// one request (or a few pages) answers however many backups the tenant
// has kept; RowKeys ascend, so the last match is the newest.
func (s *Store) ActiveBackup(ctx context.Context, tenant string) (*catalog.Backup, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and (Status eq %s or Status eq %s)",
		quote(tenant), quote(string(catalog.StatusQueued)), quote(string(catalog.StatusRunning)))
	sel := "RowKey"
	var last []byte
	pager := s.backups.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to look for an active backup of tenant %s: %w", tenant, classify(err))
		}
		if n := len(page.Entities); n > 0 {
			last = page.Entities[n-1]
		}
	}
	if last == nil {
		return nil, fmt.Errorf("no queued or running backup of tenant %s: %w", tenant, catalog.ErrNotFound)
	}
	// Keys only: the row is read on its own, with the ETag a caller needs.
	var e aztables.EDMEntity
	if err := json.Unmarshal(last, &e); err != nil {
		return nil, fmt.Errorf("failed to decode a key of backups: %w", err)
	}
	return s.GetBackup(ctx, tenant, e.RowKey)
}

// StaleBackups scans the whole Backups table with a server-side filter on
// status and heartbeat. That is a cross-partition scan: run it from a
// timer, rarely, not per request.
func (s *Store) StaleBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	// Filter on StartedAt, not HeartbeatAt: a cleared heartbeat is a
	// missing property, which a server-side filter can't match. A heartbeat
	// is never older than the start, so this finds every candidate.
	filter := fmt.Sprintf("Status eq %s and StartedAt lt datetime'%s'",
		quote(string(catalog.StatusRunning)), before.UTC().Format("2006-01-02T15:04:05.000Z"))
	var out []*catalog.Backup
	pager := s.backups.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list stale backups: %w", classify(err))
		}
		for _, raw := range page.Entities {
			b, err := decodeBackup(raw, "")
			if err != nil {
				return nil, err
			}
			if b.LastAlive().Before(before) {
				out = append(out, b)
			}
		}
	}
	return out, nil
}

func (s *Store) CreateRestore(ctx context.Context, r *catalog.Restore) error {
	r.Normalize()
	ent, err := restoreEntity(r)
	if err != nil {
		return err
	}
	etag, err := s.add(ctx, s.restores, "restore", r.RestoreID, ent)
	if err != nil {
		return err
	}
	r.ETag = etag
	return nil
}

func (s *Store) GetRestore(ctx context.Context, tenant, restoreID string) (*catalog.Restore, error) {
	resp, err := s.restores.GetEntity(ctx, tenant, restoreID, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to read restore %s: %w", restoreID, classify(err))
	}
	return decodeRestore(resp.Value, string(resp.ETag))
}

func (s *Store) UpdateRestore(ctx context.Context, r *catalog.Restore) error {
	r.Normalize()
	ent, err := restoreEntity(r)
	if err != nil {
		return err
	}
	etag, err := s.update(ctx, s.restores, "restore", r.RestoreID, r.ETag, ent)
	if err != nil {
		return err
	}
	r.ETag = etag
	return nil
}

// StaleRestores scans the whole Restores table for running rows, filtered
// server-side on state and start time (a row's start is never after its
// heartbeat, so every stale row passes), then on [catalog.Restore.LastAlive]
// here: a cleared heartbeat is an absent property the service can't
// compare. A cross-partition scan: run it from a timer, rarely.
func (s *Store) StaleRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	filter := fmt.Sprintf("State eq %s and StartedAt lt datetime'%s'",
		quote(string(catalog.RestoreRunning)), before.UTC().Format("2006-01-02T15:04:05.000Z"))
	var out []*catalog.Restore
	pager := s.restores.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list stale restores: %w", classify(err))
		}
		for _, raw := range page.Entities {
			r, err := decodeRestore(raw, "")
			if err != nil {
				return nil, err
			}
			if r.LastAlive().Before(before) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}
