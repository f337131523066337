package byok

import (
	"context"
	"iter"
	"maps"
	"slices"
	"strconv"
	"sync"
)

// MemStore is a [Store] in memory, held to the ByokSettings table's
// behaviour by byok/storetest. It lives in this package, not in a mem
// subpackage, because the service's own tests (package byok) use it and
// cannot import a package that imports byok.
type MemStore struct {
	mu   sync.Mutex
	rows map[string]Record
	seq  int
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rows: map[string]Record{}} }

// Get implements [Store].
func (m *MemStore) Get(_ context.Context, tenant string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rows[tenant]; ok {
		return clone(r), nil
	}
	return Record{Tenant: tenant}, nil
}

// Put implements [Store].
func (m *MemStore) Put(_ context.Context, rec Record) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.rows[rec.Tenant]
	if ok != rec.stored() || ok && cur.RowETag != rec.RowETag {
		return Record{}, ErrConflict
	}
	m.seq++
	rec.RowETag = `W/"` + strconv.Itoa(m.seq) + `"`
	rec = clone(rec)
	m.rows[rec.Tenant] = rec
	return clone(rec), nil
}

// Enabled implements [Store], in tenant order. The rows are copied before
// the first yield, so the loop body may write to the store.
func (m *MemStore) Enabled(context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		m.mu.Lock()
		var out []Record
		for _, t := range slices.Sorted(maps.Keys(m.rows)) {
			if r := m.rows[t]; r.Enabled {
				out = append(out, clone(r))
			}
		}
		m.mu.Unlock()
		for _, r := range out {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// clone copies the record's one pointer, so callers never share state with
// the store.
func clone(r Record) Record {
	if r.LastCheck != nil {
		c := *r.LastCheck
		r.LastCheck = &c
	}
	return r
}
