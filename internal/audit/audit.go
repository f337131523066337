// Package audit writes the KeyAudit table (contract §3): one row per wrap,
// unwrap and key validation, with tenant, versioned key id, key source,
// outcome code, backup or restore id and duration. Never key material.
//
// A failed audit write is logged at error level and does not fail the key
// operation it describes. The operation has already happened at Key Vault,
// whose own logs (the customer's, for BYOK) are the authoritative record of
// key use; failing a backup or restore after a successful wrap because the
// audit table hiccupped would make the service less reliable without making
// anything safer, and for wraps it would trigger the platform-key fallback
// for a reason unrelated to the key.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/azerr"
)

// DefaultTable is the audit table's default name.
const DefaultTable = "KeyAudit"

// Operation is what was done with a key.
type Operation string

// The audited operations.
const (
	Wrap     Operation = "wrap"
	Unwrap   Operation = "unwrap"
	Validate Operation = "validate"
	// RewrapUnwrap and RewrapWrap are a re-wrap's unwrap with the old key
	// and wrap with the new one (contract §7).
	RewrapUnwrap Operation = "rewrap-unwrap"
	RewrapWrap   Operation = "rewrap-wrap"
)

// OutcomeOK is the Outcome of a successful operation; failures carry their
// error code.
const OutcomeOK = "ok"

// UnscopedTenant is the partition of rows recorded without a valid tenant
// in scope, so that such a use of a key is still on record.
const UnscopedTenant = "_unscoped"

// Entry is one KeyAudit row.
type Entry struct {
	Tenant    string
	Operation Operation
	KeyID     string // versioned when known
	KeySource string // "customer" or "platform"
	Outcome   string // OutcomeOK or an error code
	BackupID  string
	RestoreID string
	Duration  time.Duration
	At        time.Time // set by Record from the clock when zero
	RowKey    string    // set by Record
}

// Log writes and reads KeyAudit rows.
type Log struct {
	client *aztables.Client
	clock  func() time.Time
}

// New returns a Log over the KeyAudit table client (named from settings,
// default [DefaultTable]); clock nil = time.Now.
func New(client *aztables.Client, clock func() time.Time) *Log {
	if clock == nil {
		clock = time.Now
	}
	return &Log{client: client, clock: clock}
}

// EnsureTable creates the table if it is missing. Wiring calls it once at startup.
func (l *Log) EnsureTable(ctx context.Context) error {
	_, err := l.client.CreateTable(ctx, nil)
	if err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return fmt.Errorf("failed to create the key audit table: %w", err)
	}
	return nil
}

var tenantRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Record writes e as a new row and returns it as written. RowKeys sort by
// time and carry 64 random bits, so concurrent rows never collide.
func (l *Log) Record(ctx context.Context, e Entry) (Entry, error) {
	if e.At.IsZero() {
		e.At = l.clock()
	}
	e.At = e.At.UTC()
	if !tenantRE.MatchString(e.Tenant) {
		e.Tenant = UnscopedTenant
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return e, fmt.Errorf("failed to make an audit row key: %w", err)
	}
	e.RowKey = e.At.Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
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
		return e, fmt.Errorf("failed to encode an audit row: %w", err)
	}
	if _, err := l.client.AddEntity(ctx, b, nil); err != nil {
		return e, fmt.Errorf("failed to write an audit row: %w", err)
	}
	return e, nil
}

// List returns a tenant's rows, oldest first (at most max; max <= 0 = all).
func (l *Log) List(ctx context.Context, tenant string, max int) ([]Entry, error) {
	filter := "PartitionKey eq '" + strings.ReplaceAll(tenant, "'", "''") + "'"
	pager := l.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	var out []Entry
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

func fromEntity(e aztables.EDMEntity) Entry {
	str := func(n string) string { s, _ := e.Properties[n].(string); return s }
	out := Entry{
		Tenant: e.PartitionKey, RowKey: e.RowKey, Operation: Operation(str("Operation")), KeyID: str("KeyId"),
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
