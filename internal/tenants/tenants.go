// Package tenants reads the Tenants table (API.md §3): PartitionKey
// "tenant", RowKey = tenant id, BackupEnabled bool (absent = true). The
// scheduler lists the tenants to back up; rows it cannot use are counted,
// not fatal, so one bad row never stops the nightly run.
//
// The table itself (Directory) is tenants/aztable; this package holds the
// row's vocabulary and the tenant id rule.
package tenants

import "errors"

// Partition is the PartitionKey of every row of the Tenants table.
const Partition = "tenant"

// MaxInvalidIDs bounds how many invalid ids [Counts] keeps for the log.
const MaxInvalidIDs = 20

// Tenant is one row.
type Tenant struct {
	ID            string
	BackupEnabled bool
}

// Counts tallies one listing. Invalid rows are those whose RowKey is not a
// valid tenant id or whose BackupEnabled is not a boolean; they are skipped.
type Counts struct {
	Enabled, Disabled, Invalid int
	// InvalidIDs holds up to MaxInvalidIDs of the invalid RowKeys, for the log.
	InvalidIDs []string
}

// ErrInvalidID: a tenant id that does not match API.md §3's rule.
var ErrInvalidID = errors.New("tenants: invalid tenant id")
