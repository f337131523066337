package byok

import "time"

// State is a tenant's BYOK state (API.md §2).
type State string

// The contract's states.
const (
	Disabled State = "disabled" // not configured, or turned off
	Active   State = "active"   // the last use or check of the key succeeded
	Degraded State = "degraded" // configured, but the last use or check failed
)

// Settings is what a tenant's admin configures: which key in which vault,
// reached through which Entra tenant.
type Settings struct {
	KeyVaultName string
	KeyName      string
	TenantID     string // the customer's Entra tenant (GUID)
	KeyVersion   string // pinned version; "" follows the key's current version
	// FallbackToPlatformKey lets backups use the platform key while the
	// customer key is unusable; false makes them fail instead.
	FallbackToPlatformKey bool
}

// Check is the outcome of the latest check or use of a tenant's key.
type Check struct {
	At      time.Time
	OK      bool
	Code    string // an errcode code when !OK
	Message string // the customer-facing sentence when !OK
}

// Record is one tenant's stored BYOK settings and state: one row of the
// ByokSettings table.
type Record struct {
	Tenant  string
	Enabled bool
	Settings

	// Version counts admin writes (PUT and DELETE). It is the ETag clients
	// see, so system writes (the monitor, key use) never make an admin's
	// If-Match stale; 0 means never configured.
	Version int64

	KeyID         string // versioned id of the key version in use
	KeyType       string
	KeySize       int
	EnabledAt     time.Time
	LastCheck     *Check
	DegradedSince time.Time // zero unless degraded

	// RowETag is the stored row's own concurrency token, set by the [Store]
	// that read or wrote the record and opaque to everyone else; "" when no
	// row exists.
	RowETag string
}

// State derives the contract state from the record.
func (r Record) State() State {
	switch {
	case !r.Enabled:
		return Disabled
	case !r.DegradedSince.IsZero():
		return Degraded
	default:
		return Active
	}
}

// stored reports whether the record was read from a row (rather than being
// the zero record of a tenant that never configured BYOK).
func (r Record) stored() bool { return r.RowETag != "" }
