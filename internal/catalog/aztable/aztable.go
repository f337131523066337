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

// table is one job kind's table: its client and its entity codec, so
// create, read and conditional update are written once for every kind.
type table[T catalog.Row[T]] struct {
	c      *aztables.Client
	what   string // "backup", "restore": error messages
	encode func(T) ([]byte, error)
	decode func(raw []byte, etag string) (T, error)
}

func (t table[T]) create(ctx context.Context, row T) error {
	row.Normalize()
	ent, err := t.encode(row)
	if err != nil {
		return err
	}
	_, id := row.Key()
	resp, err := t.c.AddEntity(ctx, ent, nil)
	if err != nil {
		return fmt.Errorf("failed to create %s %s: %w", t.what, id, classify(err))
	}
	row.JobPart().ETag = string(resp.ETag)
	return nil
}

func (t table[T]) get(ctx context.Context, tenant, id string) (T, error) {
	resp, err := t.c.GetEntity(ctx, tenant, id, nil)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("failed to read %s %s: %w", t.what, id, classify(err))
	}
	return t.decode(resp.Value, string(resp.ETag))
}

func (t table[T]) update(ctx context.Context, row T) error {
	_, id := row.Key()
	j := row.JobPart()
	if j.ETag == "" {
		// An update without a version would overwrite blindly; callers must
		// read (or create) the row first.
		return fmt.Errorf("failed to update %s %s without an ETag: %w", t.what, id, catalog.ErrConflict)
	}
	row.Normalize()
	ent, err := t.encode(row)
	if err != nil {
		return err
	}
	e := azcore.ETag(j.ETag)
	resp, err := t.c.UpdateEntity(ctx, ent, &aztables.UpdateEntityOptions{IfMatch: &e, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return fmt.Errorf("failed to update %s %s: %w", t.what, id, classify(err))
	}
	j.ETag = string(resp.ETag)
	return nil
}

// stale lists the running rows whose attempt last proved alive before
// before. The filter is server-side on the kind's status property and on
// StartedAt, not HeartbeatAt: a cleared heartbeat is a missing property,
// which a server-side filter can't match, and a heartbeat is never older
// than the start, so every candidate passes; LastAlive decides here. A
// cross-partition scan: run it from a timer, rarely, not per request.
func (t table[T]) stale(ctx context.Context, statusProp, running string, before time.Time) ([]T, error) {
	filter := fmt.Sprintf("%s eq %s and StartedAt lt datetime'%s'",
		statusProp, quote(running), before.UTC().Format("2006-01-02T15:04:05.000Z"))
	var out []T
	pager := t.c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list stale %ss: %w", t.what, classify(err))
		}
		for _, raw := range page.Entities {
			row, err := t.decode(raw, "")
			if err != nil {
				return nil, err
			}
			if row.JobPart().LastAlive().Before(before) {
				out = append(out, row)
			}
		}
	}
	return out, nil
}

// queued lists the queued rows waiting since before before. The filter is
// server-side on the kind's status property and on RequestedAt, which no
// later mark (a resend, a delayed retry) precedes, so every candidate
// passes; WaitingSince decides here. A cross-partition scan like stale.
func (t table[T]) queued(ctx context.Context, statusProp, queued string, before time.Time, since func(T) time.Time) ([]T, error) {
	filter := fmt.Sprintf("%s eq %s and RequestedAt lt datetime'%s'",
		statusProp, quote(queued), before.UTC().Format("2006-01-02T15:04:05.000Z"))
	var out []T
	pager := t.c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list queued %ss: %w", t.what, classify(err))
		}
		for _, raw := range page.Entities {
			row, err := t.decode(raw, "")
			if err != nil {
				return nil, err
			}
			if since(row).Before(before) {
				out = append(out, row)
			}
		}
	}
	return out, nil
}

func (s *Store) backupTable() table[*catalog.Backup] {
	return table[*catalog.Backup]{c: s.backups, what: "backup", encode: backupEntity, decode: decodeBackup}
}

func (s *Store) restoreTable() table[*catalog.Restore] {
	return table[*catalog.Restore]{c: s.restores, what: "restore", encode: restoreEntity, decode: decodeRestore}
}

func (s *Store) CreateBackup(ctx context.Context, b *catalog.Backup) error {
	return s.backupTable().create(ctx, b)
}

func (s *Store) GetBackup(ctx context.Context, tenant, backupID string) (*catalog.Backup, error) {
	return s.backupTable().get(ctx, tenant, backupID)
}

func (s *Store) UpdateBackup(ctx context.Context, b *catalog.Backup) error {
	return s.backupTable().update(ctx, b)
}

// ListBackups pages newest first; see the catalog package doc for the
// method and its cost.
func (s *Store) ListBackups(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.BackupPage, error) {
	var hide string
	if !opts.IncludeDeleted {
		// Server-side, so a page is full however many rows are hidden.
		hide = " and Status ne " + quote(string(catalog.StatusDeleted)) + " and Status ne " + quote(string(catalog.StatusPurged))
	}
	rows, token, err := listPage(ctx, s.backups, "backups", tenant, hide, opts, decodeBackup, func(b *catalog.Backup) string { return b.BackupID })
	return catalog.BackupPage{Backups: rows, ContinuationToken: token}, err
}

// ListRestores pages newest first, exactly as ListBackups.
func (s *Store) ListRestores(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RestorePage, error) {
	rows, token, err := listPage(ctx, s.restores, "restores", tenant, "", opts, decodeRestore, func(r *catalog.Restore) string { return r.RestoreID })
	return catalog.RestorePage{Restores: rows, ContinuationToken: token}, err
}

// listPage reads one newest-first page of a tenant's partition of c in two
// passes (catalog package doc, "Listing newest first"); extra is appended to
// both passes' filters.
func listPage[T any](ctx context.Context, c *aztables.Client, what, tenant, extra string, opts catalog.ListOptions,
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
	filter += extra
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
	filter = "PartitionKey eq " + quote(tenant) + " and RowKey ge " + quote(ids[0]) + " and RowKey le " + quote(ids[len(ids)-1]) + extra
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

// BackupTenants skips from partition to partition: each query asks for the
// first key after the previous tenant's partition ($top=1), so the cost is
// one request per tenant whatever its number of rows.
func (s *Store) BackupTenants(ctx context.Context, fn func(tenant string) error) error {
	sel, top := "PartitionKey", int32(1)
	after := ""
	for {
		// Every row of partition after has PartitionKey == after, so the
		// first key greater than it is the next partition's. An empty page
		// with a continuation (the service may return one) is followed.
		filter := "PartitionKey gt " + quote(after)
		pager := s.backups.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel, Top: &top})
		var next string
		for pager.More() && next == "" {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("failed to list the tenants with backups: %w", classify(err))
			}
			if len(page.Entities) > 0 {
				var e aztables.EDMEntity
				if err := json.Unmarshal(page.Entities[0], &e); err != nil {
					return fmt.Errorf("failed to decode a key of backups: %w", err)
				}
				next = e.PartitionKey
			}
		}
		if next == "" {
			return nil
		}
		if err := fn(next); err != nil {
			return err
		}
		after = next
	}
}

// StaleBackups: see [table.stale].
func (s *Store) StaleBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	return s.backupTable().stale(ctx, "Status", string(catalog.StatusRunning), before)
}

// QueuedBackups: see [table.queued].
func (s *Store) QueuedBackups(ctx context.Context, before time.Time) ([]*catalog.Backup, error) {
	return s.backupTable().queued(ctx, "Status", string(catalog.StatusQueued), before, (*catalog.Backup).WaitingSince)
}

func (s *Store) CreateRestore(ctx context.Context, r *catalog.Restore) error {
	return s.restoreTable().create(ctx, r)
}

func (s *Store) GetRestore(ctx context.Context, tenant, restoreID string) (*catalog.Restore, error) {
	return s.restoreTable().get(ctx, tenant, restoreID)
}

func (s *Store) UpdateRestore(ctx context.Context, r *catalog.Restore) error {
	return s.restoreTable().update(ctx, r)
}

// StaleRestores: see [table.stale].
func (s *Store) StaleRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	return s.restoreTable().stale(ctx, "State", string(catalog.RestoreRunning), before)
}

// QueuedRestores: see [table.queued].
func (s *Store) QueuedRestores(ctx context.Context, before time.Time) ([]*catalog.Restore, error) {
	return s.restoreTable().queued(ctx, "State", string(catalog.RestoreQueued), before, (*catalog.Restore).WaitingSince)
}
