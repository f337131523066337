// Package byok is the BYOK side of the service: a tenant's customer-key
// settings (table ByokSettings), their validation, the status document of
// the Settings / BYOK Encryption page, the ByokSettings and ByokValidate
// routes, the ByokMonitor timer and the Health checkers for storage and the
// platform key (API.md §2, §3).
//
// # Storage and concurrency
//
// One row per tenant (PartitionKey = tenant, RowKey "settings") holds the
// settings and the state. Every write is conditional on the row's storage
// ETag. The row also carries an admin version, bumped by PUT and DELETE
// only; it is the ETag clients see ("0" = never configured) and send back
// in If-Match. So:
//
//   - two admins saving with the ETag they read: one wins, the other gets
//     409 Conflict;
//   - without If-Match, a save still fails with 409 when another admin
//     saved between its read and its write (validation runs in between);
//   - writes by the monitor and by key use (system writes) never make an
//     admin's ETag stale: an admin write that loses to one is retried on
//     the fresh row, and a system write that finds a new admin version
//     drops its now-stale result.
//
// # State
//
//	disabled  not configured, or turned off (DELETE)
//	active    the last check or use of the key succeeded
//	degraded  configured, the last check or use failed (degradedSince set
//	          on the transition, kept while it lasts)
//
// An unpinned key follows the key's current version: each successful check
// records the versioned keyId it validated, so the monitor refreshes keyId
// after a rotation; a pinned keyVersion is validated and used as is.
//
// # Monitor
//
// ByokMonitor lists the enabled tenants and checks them with at most
// MonitorConcurrency in flight, each bounded by CheckTimeout, the whole run
// by MonitorBudget. A tenant not reached in time is left for the next run,
// never marked degraded for the run's own lack of time.
package byok
