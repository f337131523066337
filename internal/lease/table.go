package lease

import (
	"context"
	"errors"
	"time"
)

// Row is one lease as a [Table] keeps it.
type Row struct {
	Holder  string
	Expires time.Time
}

// Errors a [Table] returns (wrapped) so that [Manager] can decide.
var (
	// ErrRowNotFound: Get found no row.
	ErrRowNotFound = errors.New("lease: no row")
	// ErrRowExists: Add found a row already there.
	ErrRowExists = errors.New("lease: row exists")
	// ErrRowChanged: Replace or Delete found the row changed since the
	// etag was read, or gone.
	ErrRowChanged = errors.New("lease: row changed or gone")
)

// Table keeps one row per (scope, tenant) and changes it only by
// compare-and-swap on an opaque etag: all the lease logic needs from
// storage. Table Storage (lease/aztable) and memory (lease/mem) implement it, held
// to the same behaviour by lease/leasetest.
type Table interface {
	// Create makes the table if it is missing.
	Create(ctx context.Context) error
	// Get reads a row and its etag; ErrRowNotFound if absent.
	Get(ctx context.Context, scope, tenant string) (Row, string, error)
	// Add inserts a row if absent and returns its etag; ErrRowExists if not.
	Add(ctx context.Context, scope, tenant string, r Row) (string, error)
	// Replace overwrites the row if its etag is still etag and returns the
	// new one; ErrRowChanged otherwise (or if the row is gone).
	Replace(ctx context.Context, scope, tenant string, r Row, etag string) (string, error)
	// Delete removes the row if its etag is still etag; ErrRowChanged
	// otherwise (or if the row is gone).
	Delete(ctx context.Context, scope, tenant, etag string) error
}
