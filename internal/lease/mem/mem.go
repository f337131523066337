// Package mem is an in-memory [lease.Table], for tests of the services that
// take leases. lease/leasetest holds it to the Table Storage one.
package mem

import (
	"context"
	"strconv"
	"sync"

	"github.com/twinit/byok-backup/internal/lease"
)

// Table is an in-memory [lease.Table]. The zero value is not usable; use
// [New]. Safe for concurrent use.
type Table struct {
	mu   sync.Mutex
	rows map[[2]string]entry
	next uint64
}

type entry struct {
	row  lease.Row
	etag string
}

var _ lease.Table = (*Table)(nil)

// New returns an empty table.
func New() *Table { return &Table{rows: map[[2]string]entry{}} }

// Create does nothing: the table always exists.
func (t *Table) Create(context.Context) error { return nil }

func (t *Table) etag() string {
	t.next++
	return strconv.FormatUint(t.next, 10)
}

// Get returns the row and its etag, or lease.ErrRowNotFound.
func (t *Table) Get(ctx context.Context, scope, tenant string) (lease.Row, string, error) {
	if err := ctx.Err(); err != nil {
		return lease.Row{}, "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.rows[[2]string{scope, tenant}]
	if !ok {
		return lease.Row{}, "", lease.ErrRowNotFound
	}
	return e.row, e.etag, nil
}

// Add inserts the row if absent, or returns lease.ErrRowExists.
func (t *Table) Add(ctx context.Context, scope, tenant string, r lease.Row) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := [2]string{scope, tenant}
	if _, ok := t.rows[k]; ok {
		return "", lease.ErrRowExists
	}
	e := entry{row: r, etag: t.etag()}
	t.rows[k] = e
	return e.etag, nil
}

// Replace overwrites the row if its etag matches, or returns
// lease.ErrRowChanged.
func (t *Table) Replace(ctx context.Context, scope, tenant string, r lease.Row, etag string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := [2]string{scope, tenant}
	if cur, ok := t.rows[k]; !ok || cur.etag != etag {
		return "", lease.ErrRowChanged
	}
	e := entry{row: r, etag: t.etag()}
	t.rows[k] = e
	return e.etag, nil
}

// Delete removes the row if its etag matches, or returns
// lease.ErrRowChanged.
func (t *Table) Delete(ctx context.Context, scope, tenant, etag string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := [2]string{scope, tenant}
	if cur, ok := t.rows[k]; !ok || cur.etag != etag {
		return lease.ErrRowChanged
	}
	delete(t.rows, k)
	return nil
}
