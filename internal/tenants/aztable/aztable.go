// Package aztable is the Tenants table (API.md §3) over Azure Table
// Storage: PartitionKey "tenant", RowKey = tenant id, BackupEnabled bool
// (absent = true).
package aztable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/tenants"
)

// Directory is the Tenants table. Safe for concurrent use.
type Directory struct {
	client   *aztables.Client
	pageSize int32
}

// Options tune [New]; nil means defaults.
type Options struct {
	// PageSize is the number of rows per request (default and maximum 1000,
	// the service's own page limit).
	PageSize int
}

// New returns a Directory over the Tenants table client.
func New(client *aztables.Client, opts *Options) *Directory {
	d := &Directory{client: client, pageSize: 1000}
	if opts != nil && opts.PageSize > 0 && opts.PageSize < 1000 {
		d.pageSize = int32(opts.PageSize)
	}
	return d
}

// CreateTable creates the table if it is missing.
func (d *Directory) CreateTable(ctx context.Context) error {
	if _, err := d.client.CreateTable(ctx, nil); err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && aztables.TableErrorCode(re.ErrorCode) == aztables.TableAlreadyExists {
			return nil
		}
		return fmt.Errorf("failed to create tenants table: %w", err)
	}
	return nil
}

// Put inserts or replaces a tenant row (tests, demo data, operators).
func (d *Directory) Put(ctx context.Context, t tenants.Tenant) error {
	if !tenants.ValidID(t.ID) {
		return fmt.Errorf("failed to put tenant %q: %w", t.ID, tenants.ErrInvalidID)
	}
	ent, err := json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: tenants.Partition, RowKey: t.ID},
		Properties: map[string]any{"BackupEnabled": t.BackupEnabled},
	})
	if err != nil {
		return fmt.Errorf("failed to encode tenant %s: %w", t.ID, err)
	}
	if _, err := d.client.UpsertEntity(ctx, ent, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("failed to put tenant %s: %w", t.ID, err)
	}
	return nil
}

// Enabled yields the id of every tenant with backups enabled, page by page
// (a page is at most [Options].PageSize rows, so memory stays flat however many tenants
// there are). Disabled and invalid rows are skipped and tallied in counts,
// which may be nil; read counts after the loop. A storage error is yielded
// once and ends the sequence.
func (d *Directory) Enabled(ctx context.Context, counts *tenants.Counts) iter.Seq2[string, error] {
	if counts == nil {
		counts = &tenants.Counts{}
	}
	return func(yield func(string, error) bool) {
		filter := "PartitionKey eq '" + tenants.Partition + "'"
		sel := "RowKey,BackupEnabled"
		pager := d.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel, Top: &d.pageSize})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				yield("", fmt.Errorf("failed to list tenants: %w", err))
				return
			}
			for _, raw := range page.Entities {
				t, ok := decode(raw)
				switch {
				case !ok:
					counts.Invalid++
					if len(counts.InvalidIDs) < tenants.MaxInvalidIDs {
						counts.InvalidIDs = append(counts.InvalidIDs, t.ID)
					}
				case !t.BackupEnabled:
					counts.Disabled++
				default:
					counts.Enabled++
					if !yield(t.ID, nil) {
						return
					}
				}
			}
		}
	}
}

// decode reads one row; ok is false for an invalid id or a BackupEnabled
// that is present but not a boolean.
func decode(raw []byte) (tenants.Tenant, bool) {
	var e struct {
		RowKey        string
		BackupEnabled json.RawMessage
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return tenants.Tenant{}, false
	}
	t := tenants.Tenant{ID: e.RowKey, BackupEnabled: true}
	if len(e.BackupEnabled) > 0 && string(e.BackupEnabled) != "null" {
		if err := json.Unmarshal(e.BackupEnabled, &t.BackupEnabled); err != nil {
			return t, false
		}
	}
	return t, tenants.ValidID(t.ID)
}

// Exists reports whether the Tenants table has a row for id, whatever its
// BackupEnabled (a disabled tenant is still a tenant: it is only left out
// of the schedule). An invalid id is [tenants.ErrInvalidID]; a missing table is an
// error, not "no such tenant".
func (d *Directory) Exists(ctx context.Context, id string) (bool, error) {
	if !tenants.ValidID(id) {
		return false, fmt.Errorf("failed to look up tenant %q: %w", id, tenants.ErrInvalidID)
	}
	_, err := d.client.GetEntity(ctx, tenants.Partition, id, nil)
	if err == nil {
		return true, nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch aztables.TableErrorCode(re.ErrorCode) {
		case aztables.EntityNotFound, aztables.ResourceNotFound:
			return false, nil
		}
	}
	return false, fmt.Errorf("failed to look up tenant %s: %w", id, err)
}
