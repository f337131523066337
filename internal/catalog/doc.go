// Package catalog is the record of backups and restores: the Backups and
// Restores tables (PartitionKey = tenant id, RowKey = backup or restore id),
// the ids themselves, the status state machines and the JSON shapes of
// API.md §2.
//
// # Commit point
//
// A backup's row is written queued when requested, running when a worker
// starts it and completed only after every chunk and the manifest are stored:
// the completed row is the commit point. Rows are written conditionally
// (insert-if-absent, update-if-ETag-matches), so a redelivered queue message
// finds its row already there and a second worker loses the race with
// ErrConflict instead of running twice.
//
// # Listing newest first
//
// Table Storage returns a partition in ascending RowKey order and has no
// descending scan. Ids sort by time, so newest first is the partition read
// backwards. ListBackups reads only the RowKeys (a $select projection, about
// 40 bytes per row) older than the continuation point, keeps the newest
// page-size ids, then fetches those full rows with one RowKey range query.
// Cost per page: O(rows older than the cursor) keys read, one range read of
// the page; for a tenant with a daily backup and a year of retention that is
// a few hundred keys, one service page. An inverted-index row per backup
// would make a page O(page size) but doubles every write and needs an entity
// group transaction to stay consistent; not worth it at these sizes.
package catalog
