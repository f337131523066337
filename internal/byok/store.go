package byok

import (
	"context"
	"errors"
	"iter"
)

// ErrConflict means a conditional write lost against another writer.
var ErrConflict = errors.New("byok: the settings row was changed concurrently")

// Store keeps one [Record] per tenant. Every write is conditional on the
// record having been read unchanged, so concurrent writers never overwrite
// each other silently. The ByokSettings table is byok/aztable; [MemStore]
// keeps records in memory; byok/storetest holds both to this contract.
type Store interface {
	// Get returns the tenant's record, or a zero Record (Version 0, not
	// Enabled) when none is stored.
	Get(ctx context.Context, tenant string) (Record, error)
	// Put writes rec if the stored row is still the one rec was read from
	// (absent for a zero Record) and returns it as stored; ErrConflict
	// otherwise.
	Put(ctx context.Context, rec Record) (Record, error)
	// Enabled yields every tenant's record with BYOK enabled, reading the
	// table a page at a time so the monitor's memory does not grow with the
	// tenant count. An error is yielded once and ends the sequence.
	Enabled(ctx context.Context) iter.Seq2[Record, error]
}
