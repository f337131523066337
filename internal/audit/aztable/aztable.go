// Package aztable is the KeyAudit table (API.md §3) over Azure Table
// Storage: PartitionKey = tenant, RowKey as [audit.Log] makes it.
package aztable

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/audit"
	"github.com/twinit/byok-backup/internal/azerr"
)

// Table is the [audit.Table] over a Table Storage table.
type Table struct {
	client *aztables.Client
}

var _ audit.Table = (*Table)(nil)

// New returns the Table over client (the KeyAudit table, named from settings).
func New(client *aztables.Client) *Table { return &Table{client: client} }

// EnsureTable implements [audit.Table].
func (t *Table) EnsureTable(ctx context.Context) error {
	_, err := t.client.CreateTable(ctx, nil)
	if err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return fmt.Errorf("failed to create the key audit table: %w", err)
	}
	return nil
}

// Add implements [audit.Table].
func (t *Table) Add(ctx context.Context, e audit.Entry) error {
	b, err := json.Marshal(aztables.EDMEntity{
		Entity: aztables.Entity{PartitionKey: e.Tenant, RowKey: e.RowKey},
		Properties: map[string]any{
			"Operation":  string(e.Operation),
			"KeyId":      e.KeyID,
			"KeySource":  e.KeySource,
			"Outcome":    e.Outcome,
			"BackupId":   e.BackupID,
			"RestoreId":  e.RestoreID,
			"DurationMs": aztables.EDMInt64(e.Duration.Milliseconds()),
			"At":         aztables.EDMDateTime(e.At),
		},
	})
	if err != nil {
		return fmt.Errorf("failed to encode an audit row: %w", err)
	}
	if _, err := t.client.AddEntity(ctx, b, nil); err != nil {
		return fmt.Errorf("failed to write an audit row: %w", err)
	}
	return nil
}

// List implements [audit.Table].
func (t *Table) List(ctx context.Context, tenant string, max int) ([]audit.Entry, error) {
	filter := "PartitionKey eq '" + strings.ReplaceAll(tenant, "'", "''") + "'"
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []audit.Entry
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("failed to list audit rows: %w", err)
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				return nil, fmt.Errorf("failed to decode an audit row: %w", err)
			}
			out = append(out, fromEntity(e))
			if max > 0 && len(out) == max {
				return out, nil
			}
		}
	}
	return out, nil
}

func fromEntity(e aztables.EDMEntity) audit.Entry {
	str := func(n string) string { s, _ := e.Properties[n].(string); return s }
	out := audit.Entry{
		Tenant: e.PartitionKey, RowKey: e.RowKey, Operation: audit.Operation(str("Operation")), KeyID: str("KeyId"),
		KeySource: str("KeySource"), Outcome: str("Outcome"), BackupID: str("BackupId"), RestoreID: str("RestoreId"),
	}
	switch d := e.Properties["DurationMs"].(type) {
	case aztables.EDMInt64:
		out.Duration = time.Duration(d) * time.Millisecond
	case int32:
		out.Duration = time.Duration(d) * time.Millisecond
	}
	if t, ok := e.Properties["At"].(aztables.EDMDateTime); ok {
		out.At = time.Time(t).UTC()
	}
	return out
}
