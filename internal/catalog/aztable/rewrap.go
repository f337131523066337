package aztable

import (
	"context"

	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/catalog"
)

var (
	_ catalog.RewrapStore   = (*Rewraps)(nil)
	_ catalog.BackupScanner = (*Store)(nil)
)

// Rewraps is the Table Storage [catalog.RewrapStore]: the Rewraps table,
// PartitionKey = tenant id, RowKey = re-wrap id. Safe for concurrent use.
type Rewraps struct{ c *aztables.Client }

// NewRewraps returns the store over the Rewraps table client.
func NewRewraps(c *aztables.Client) *Rewraps { return &Rewraps{c: c} }

// CreateTable creates the table if it is missing; call it once at startup.
func (s *Rewraps) CreateTable(ctx context.Context) error {
	if _, err := s.c.CreateTable(ctx, nil); err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return fmt.Errorf("failed to create the rewraps table: %w", err)
	}
	return nil
}

func (s *Rewraps) table() table[*catalog.Rewrap] {
	return table[*catalog.Rewrap]{c: s.c, what: "rewrap", encode: rewrapEntity, decode: decodeRewrap}
}

func (s *Rewraps) CreateRewrap(ctx context.Context, r *catalog.Rewrap) error {
	return s.table().create(ctx, r)
}

func (s *Rewraps) GetRewrap(ctx context.Context, tenant, id string) (*catalog.Rewrap, error) {
	return s.table().get(ctx, tenant, id)
}

func (s *Rewraps) UpdateRewrap(ctx context.Context, r *catalog.Rewrap) error {
	return s.table().update(ctx, r)
}

// ListRewraps pages newest first, exactly as ListBackups.
func (s *Rewraps) ListRewraps(ctx context.Context, tenant string, opts catalog.ListOptions) (catalog.RewrapPage, error) {
	rows, token, err := listPage(ctx, s.c, "rewraps", tenant, "", opts, decodeRewrap, func(r *catalog.Rewrap) string { return r.RewrapID })
	return catalog.RewrapPage{Rewraps: rows, ContinuationToken: token}, err
}

// ActiveRewrap filters server-side on State: one request answers however
// many re-wraps the tenant ran.
func (s *Rewraps) ActiveRewrap(ctx context.Context, tenant string) (*catalog.Rewrap, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and (State eq %s or State eq %s)",
		quote(tenant), quote(string(catalog.RewrapQueued)), quote(string(catalog.RewrapRunning)))
	var last *catalog.Rewrap
	pager := s.c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to look for an active rewrap of tenant %s: %w", tenant, classify(err))
		}
		if n := len(page.Entities); n > 0 {
			if last, err = decodeRewrap(page.Entities[n-1], ""); err != nil {
				return nil, err
			}
		}
	}
	if last == nil {
		return nil, fmt.Errorf("no queued or running rewrap of tenant %s: %w", tenant, catalog.ErrNotFound)
	}
	return last, nil
}

// ScanBackups filters the tenant's partition on status server-side and
// decodes one service page (up to 1,000 rows) at a time.
func (s *Store) ScanBackups(ctx context.Context, tenant string, o catalog.ScanOptions, fn func(*catalog.Backup) error) error {
	filter := "PartitionKey eq " + quote(tenant)
	if len(o.Statuses) > 0 {
		var or []string
		for _, st := range o.Statuses {
			or = append(or, "Status eq "+quote(string(st)))
		}
		filter += " and (" + strings.Join(or, " or ") + ")"
	}
	lo := &aztables.ListEntitiesOptions{Filter: &filter}
	if o.KeysOnly {
		sel := "RowKey,Status,KeySource,KeyId"
		lo.Select = &sel
	}
	pager := s.backups.NewListEntitiesPager(lo)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("failed to scan the backups of tenant %s: %w", tenant, classify(err))
		}
		for _, raw := range page.Entities {
			b, err := decodeBackup(raw, "")
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}
