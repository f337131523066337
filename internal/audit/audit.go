// Package audit writes the KeyAudit table (API.md §3): one row per wrap,
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
//
// The table itself is audit/aztable; this package decides what a row says.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
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
	// and wrap with the new one (API.md §7).
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

// Table stores KeyAudit rows as [Log] makes them: audit/aztable over
// Table Storage.
type Table interface {
	// EnsureTable creates the table if it is missing.
	EnsureTable(ctx context.Context) error
	// Add writes e as a new row (PartitionKey e.Tenant, RowKey e.RowKey).
	Add(ctx context.Context, e Entry) error
	// List returns a tenant's rows, oldest first (at most max; max <= 0 = all).
	List(ctx context.Context, tenant string, max int) ([]Entry, error)
}

// Log writes and reads KeyAudit rows.
type Log struct {
	table Table
	clock func() time.Time
}

// New returns a Log over the KeyAudit table (named from settings, default
// [DefaultTable]); clock nil = time.Now.
func New(table Table, clock func() time.Time) *Log {
	if clock == nil {
		clock = time.Now
	}
	return &Log{table: table, clock: clock}
}

// EnsureTable creates the table if it is missing. Wiring calls it once at startup.
func (l *Log) EnsureTable(ctx context.Context) error { return l.table.EnsureTable(ctx) }

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
	if err := l.table.Add(ctx, e); err != nil {
		return e, err
	}
	return e, nil
}

// List returns a tenant's rows, oldest first (at most max; max <= 0 = all).
func (l *Log) List(ctx context.Context, tenant string, max int) ([]Entry, error) {
	return l.table.List(ctx, tenant, max)
}
