// Package aztable is the ByokSettings table (API.md §3) over Azure Table
// Storage: one row per tenant (PartitionKey = tenant, RowKey "settings"),
// every write conditional on the row's ETag.
package aztable

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/byok"
)

// rowKey is the one row each tenant has in its partition.
const rowKey = "settings"

// Store is the [byok.Store] over the ByokSettings table.
type Store struct {
	table *aztables.Client
}

var _ byok.Store = (*Store)(nil)

// New returns a Store over table (the ByokSettings table client; internal/app
// builds it from AzureWebJobsStorage).
func New(table *aztables.Client) *Store {
	return &Store{table: table}
}

// CreateTable creates the table if it does not exist yet.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.table.CreateTable(ctx, nil)
	if err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return fmt.Errorf("failed to create the ByokSettings table: %w", err)
	}
	return nil
}

// Check makes the cheapest authenticated call on the table (a one-row
// query): the Health checker for storage.
func (s *Store) Check(ctx context.Context) error {
	top := int32(1)
	pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Top: &top, Select: new("PartitionKey")})
	if _, err := pager.NextPage(ctx); err != nil {
		return fmt.Errorf("failed to query the ByokSettings table: %w", err)
	}
	return nil
}

// Get implements [byok.Store].
func (s *Store) Get(ctx context.Context, tenant string) (byok.Record, error) {
	resp, err := s.table.GetEntity(ctx, tenant, rowKey, nil)
	if azerr.HasTableCode(err, aztables.EntityNotFound, aztables.ResourceNotFound, aztables.TableNotFound) {
		return byok.Record{Tenant: tenant}, nil
	}
	if err != nil {
		return byok.Record{}, fmt.Errorf("failed to read BYOK settings of %q: %w", tenant, err)
	}
	rec, err := decodeEntity(resp.Value)
	if err != nil {
		return byok.Record{}, err
	}
	rec.RowETag = string(resp.ETag)
	return rec, nil
}

// Put implements [byok.Store].
func (s *Store) Put(ctx context.Context, rec byok.Record) (byok.Record, error) {
	body, err := json.Marshal(encodeEntity(rec))
	if err != nil {
		return byok.Record{}, fmt.Errorf("failed to encode BYOK settings: %w", err)
	}
	if rec.RowETag == "" { // never stored: insert
		resp, err := s.table.AddEntity(ctx, body, nil)
		if azerr.HasTableCode(err, aztables.EntityAlreadyExists) {
			return byok.Record{}, byok.ErrConflict
		}
		if err != nil {
			return byok.Record{}, fmt.Errorf("failed to insert BYOK settings of %q: %w", rec.Tenant, err)
		}
		rec.RowETag = string(resp.ETag)
		return rec, nil
	}
	etag := azcore.ETag(rec.RowETag)
	resp, err := s.table.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if azerr.HasTableCode(err, aztables.UpdateConditionNotSatisfied, aztables.EntityNotFound, aztables.ResourceNotFound) {
		return byok.Record{}, byok.ErrConflict
	}
	if err != nil {
		return byok.Record{}, fmt.Errorf("failed to update BYOK settings of %q: %w", rec.Tenant, err)
	}
	rec.RowETag = string(resp.ETag)
	return rec, nil
}

// Enabled implements [byok.Store]: one page of the table (at most 1,000
// rows) in memory at a time. A missing table has no enabled tenant.
func (s *Store) Enabled(ctx context.Context) iter.Seq2[byok.Record, error] {
	return func(yield func(byok.Record, error) bool) {
		filter := fmt.Sprintf("RowKey eq '%s' and Enabled eq true", rowKey)
		pager := s.table.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if azerr.HasTableCode(err, aztables.TableNotFound, aztables.ResourceNotFound) {
				return
			}
			if err != nil {
				yield(byok.Record{}, fmt.Errorf("failed to list BYOK settings: %w", err))
				return
			}
			for _, raw := range page.Entities {
				rec, err := decodeEntity(raw)
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// entity is the row layout. Times are RFC 3339 strings ("" = unset) so the
// row reads the same in Storage Explorer as in the API.
type entity struct {
	PartitionKey          string
	RowKey                string
	ETag                  string `json:"odata.etag,omitempty"`
	Enabled               bool
	Version               int64 `json:",string"`
	KeyVaultName          string
	KeyName               string
	EntraTenantID         string
	KeyVersion            string
	FallbackToPlatformKey bool
	KeyID                 string
	KeyType               string
	KeySize               int32
	EnabledAt             string
	LastCheckAt           string
	LastCheckOK           bool
	LastCheckCode         string
	LastCheckMessage      string
	DegradedSince         string
}

func encodeEntity(r byok.Record) entity {
	e := entity{
		PartitionKey:          r.Tenant,
		RowKey:                rowKey,
		Enabled:               r.Enabled,
		Version:               r.Version,
		KeyVaultName:          r.KeyVaultName,
		KeyName:               r.KeyName,
		EntraTenantID:         r.TenantID,
		KeyVersion:            r.KeyVersion,
		FallbackToPlatformKey: r.FallbackToPlatformKey,
		KeyID:                 r.KeyID,
		KeyType:               r.KeyType,
		KeySize:               int32(r.KeySize),
		EnabledAt:             formatTime(r.EnabledAt),
		DegradedSince:         formatTime(r.DegradedSince),
	}
	if c := r.LastCheck; c != nil {
		e.LastCheckAt, e.LastCheckOK, e.LastCheckCode, e.LastCheckMessage = formatTime(c.At), c.OK, c.Code, c.Message
	}
	return e
}

func decodeEntity(raw []byte) (byok.Record, error) {
	var e entity
	if err := json.Unmarshal(raw, &e); err != nil {
		return byok.Record{}, fmt.Errorf("failed to decode a BYOK settings row: %w", err)
	}
	r := byok.Record{
		Tenant:  e.PartitionKey,
		Enabled: e.Enabled,
		Version: e.Version,
		Settings: byok.Settings{
			KeyVaultName:          e.KeyVaultName,
			KeyName:               e.KeyName,
			TenantID:              e.EntraTenantID,
			KeyVersion:            e.KeyVersion,
			FallbackToPlatformKey: e.FallbackToPlatformKey,
		},
		KeyID:   e.KeyID,
		KeyType: e.KeyType,
		KeySize: int(e.KeySize),
		RowETag: e.ETag,
	}
	var err error
	if r.EnabledAt, err = parseTime(e.EnabledAt); err != nil {
		return byok.Record{}, err
	}
	if r.DegradedSince, err = parseTime(e.DegradedSince); err != nil {
		return byok.Record{}, err
	}
	if e.LastCheckAt != "" {
		at, err := parseTime(e.LastCheckAt)
		if err != nil {
			return byok.Record{}, err
		}
		r.LastCheck = &byok.Check{At: at, OK: e.LastCheckOK, Code: e.LastCheckCode, Message: e.LastCheckMessage}
	}
	return r, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("failed to decode a time in a BYOK settings row: %w", err)
	}
	return t.UTC(), nil
}
