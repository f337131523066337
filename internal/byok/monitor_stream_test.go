package byok

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
)

// failAfter is a store whose listing fails after its first n records, as
// a table listing fails on a later page.
type failAfter struct {
	*MemStore
	n int
}

var errPage = errors.New("page 2 could not be read")

func (f failAfter) Enabled(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		i := 0
		for rec, err := range f.MemStore.Enabled(ctx) {
			if i == f.n {
				yield(Record{}, errPage)
				return
			}
			i++
			if !yield(rec, err) {
				return
			}
		}
	}
}

// The monitor checks the tenants it was given before the listing failed,
// and the run fails with the listing's error.
func TestMonitorListingFailsMidway(t *testing.T) {
	e := newEnv(t, envOptions{inMemoryKeys: true})
	e.vault("acme-kv", 2048)
	for i := range 4 {
		_, err := e.svc.Configure(bg(), fmt.Sprintf("h%d", i+1), settingsFor("acme-kv"), "")
		must(t, err)
	}
	e.svc.store = failAfter{MemStore: e.store, n: 2}
	rep, err := e.svc.Monitor(bg())
	if !errors.Is(err, errPage) {
		t.Fatalf("err = %v, want the listing's error", err)
	}
	if rep.Tenants != 2 || rep.Checked != 2 {
		t.Fatalf("report %+v, want the 2 tenants listed before the failure checked", rep)
	}
}
