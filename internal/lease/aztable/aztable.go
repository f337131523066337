// Package aztable is the lease [lease.Table] over Azure Table Storage:
// PartitionKey = scope, RowKey = tenant, the entity's ETag as the etag.
package aztable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/lease"
)

// azureTable is the [lease.Table] over a Table Storage table.
type azureTable struct{ client *aztables.Client }

var _ lease.Table = azureTable{}

func (t azureTable) Create(ctx context.Context) error {
	if _, err := t.client.CreateTable(ctx, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
		return err
	}
	return nil
}

func entity(scope, tenant string, r lease.Row) []byte {
	b, _ := json.Marshal(aztables.EDMEntity{
		Entity: aztables.Entity{PartitionKey: scope, RowKey: tenant},
		Properties: map[string]any{
			"Holder":    r.Holder,
			"ExpiresAt": aztables.EDMDateTime(r.Expires.UTC()),
		},
	})
	return b
}

func (t azureTable) Get(ctx context.Context, scope, tenant string) (lease.Row, string, error) {
	resp, err := t.client.GetEntity(ctx, scope, tenant, nil)
	if isNotFound(err) {
		return lease.Row{}, "", fmt.Errorf("%w: %w", lease.ErrRowNotFound, err)
	}
	if err != nil {
		return lease.Row{}, "", err
	}
	var e aztables.EDMEntity
	if err := json.Unmarshal(resp.Value, &e); err != nil {
		return lease.Row{}, "", fmt.Errorf("failed to decode lease of tenant %s: %w", tenant, err)
	}
	var r lease.Row
	r.Holder, _ = e.Properties["Holder"].(string)
	if ts, ok := e.Properties["ExpiresAt"].(aztables.EDMDateTime); ok {
		r.Expires = time.Time(ts)
	}
	return r, string(resp.ETag), nil
}

func (t azureTable) Add(ctx context.Context, scope, tenant string, r lease.Row) (string, error) {
	resp, err := t.client.AddEntity(ctx, entity(scope, tenant, r), nil)
	if hasCode(err, aztables.EntityAlreadyExists) {
		return "", fmt.Errorf("%w: %w", lease.ErrRowExists, err)
	}
	if err != nil {
		return "", err
	}
	return string(resp.ETag), nil
}

func (t azureTable) Replace(ctx context.Context, scope, tenant string, r lease.Row, etag string) (string, error) {
	match := azcore.ETag(etag)
	resp, err := t.client.UpdateEntity(ctx, entity(scope, tenant, r),
		&aztables.UpdateEntityOptions{IfMatch: &match, UpdateMode: aztables.UpdateModeReplace})
	if isPrecondition(err) || isNotFound(err) {
		return "", fmt.Errorf("%w: %w", lease.ErrRowChanged, err)
	}
	if err != nil {
		return "", err
	}
	return string(resp.ETag), nil
}

func (t azureTable) Delete(ctx context.Context, scope, tenant, etag string) error {
	match := azcore.ETag(etag)
	_, err := t.client.DeleteEntity(ctx, scope, tenant, &aztables.DeleteEntityOptions{IfMatch: &match})
	if isPrecondition(err) || isNotFound(err) {
		return fmt.Errorf("%w: %w", lease.ErrRowChanged, err)
	}
	return err
}

func hasCode(err error, codes ...aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, c := range codes {
		if aztables.TableErrorCode(re.ErrorCode) == c {
			return true
		}
	}
	return false
}

func isPrecondition(err error) bool {
	var re *azcore.ResponseError
	return hasCode(err, aztables.UpdateConditionNotSatisfied) || errors.As(err, &re) && re.StatusCode == 412
}

func isNotFound(err error) bool {
	return hasCode(err, aztables.EntityNotFound, aztables.ResourceNotFound)
}

// New returns the lease table over client (e.g. the "Leases" table), for
// [lease.NewWith].
func New(client *aztables.Client) lease.Table { return azureTable{client} }
