// Package aztable stores retention policies in Table Storage (API.md §3:
// table RetentionPolicies, PartitionKey = tenant id, one row "policy").
package aztable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/retention"
)

var _ retention.Store = (*Store)(nil)

// rowKey is the one row of a tenant's partition.
const rowKey = "policy"

// Store is a [retention.Store] on one table.
type Store struct{ c *aztables.Client }

// New returns the store on c.
func New(c *aztables.Client) *Store { return &Store{c: c} }

// CreateTable creates the table if it does not exist.
func (s *Store) CreateTable(ctx context.Context) error {
	_, err := s.c.CreateTable(ctx, nil)
	var re *azcore.ResponseError
	if errors.As(err, &re) && aztables.TableErrorCode(re.ErrorCode) == aztables.TableAlreadyExists {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create the retention policies table: %w", err)
	}
	return nil
}

type entity struct {
	aztables.Entity
	KeepLast, KeepDaily, KeepWeekly, KeepMonthly, KeepYearly int32
}

func (s *Store) GetPolicy(ctx context.Context, tenant string) (retention.Policy, bool, error) {
	resp, err := s.c.GetEntity(ctx, tenant, rowKey, nil)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == 404 {
		return retention.Policy{}, false, nil
	}
	if err != nil {
		return retention.Policy{}, false, fmt.Errorf("failed to read the retention policy of tenant %s: %w", tenant, err)
	}
	var e entity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return retention.Policy{}, false, fmt.Errorf("failed to decode the retention policy of tenant %s: %w", tenant, err)
	}
	p := retention.Policy{KeepLast: int(e.KeepLast), KeepDaily: int(e.KeepDaily), KeepWeekly: int(e.KeepWeekly),
		KeepMonthly: int(e.KeepMonthly), KeepYearly: int(e.KeepYearly)}
	if err := p.Validate(); err != nil {
		return retention.Policy{}, false, fmt.Errorf("the stored retention policy of tenant %s is invalid: %w", tenant, err)
	}
	return p, true, nil
}

func (s *Store) PutPolicy(ctx context.Context, tenant string, p retention.Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(entity{Entity: aztables.Entity{PartitionKey: tenant, RowKey: rowKey},
		KeepLast: int32(p.KeepLast), KeepDaily: int32(p.KeepDaily), KeepWeekly: int32(p.KeepWeekly),
		KeepMonthly: int32(p.KeepMonthly), KeepYearly: int32(p.KeepYearly)})
	if err != nil {
		return err
	}
	if _, err := s.c.UpsertEntity(ctx, raw, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("failed to store the retention policy of tenant %s: %w", tenant, err)
	}
	return nil
}
