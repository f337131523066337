package byok

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/audit"
	audittable "github.com/twinit/byok-backup/internal/audit/aztable"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

// storage is the package's one Azurite (its CPU is the bottleneck, so the
// tests share it and each uses its own table).
var storage *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

var tableSeq atomic.Int64

// newTestStore returns an empty in-memory Store (the ByokSettings table is
// tested in byok/aztable, with the same conformance suite).
func newTestStore(testing.TB) *MemStore { return NewMemStore() }

// newTestAudit returns a KeyAudit log over a fresh table of the shared Azurite.
func newTestAudit(t testing.TB) *audit.Log {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(audittable.New(svc.NewClient(fmt.Sprintf("KeyAudit%d", tableSeq.Add(1)))), nil)
	if err := l.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}
