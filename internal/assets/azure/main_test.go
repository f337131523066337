package azure

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

// One Azurite for the package (its CPU is the bottleneck); each test gets
// its own table and container so tests don't see each other's data.
var (
	testAzurite *azurite.Instance
	testSeq     atomic.Int64
)

// Fuzz workers only decode bytes and start no Azurite (azurite.Run).
func TestMain(m *testing.M) { azurite.RunTests(m, &testAzurite) }

// newTestStore returns a Store over a fresh table and container.
func newTestStore(t testing.TB, opts *Options) *Store {
	t.Helper()
	if testAzurite == nil {
		t.Fatal("azurite is not running (fuzz mode starts none)")
	}
	cs := testAzurite.ConnectionString()
	n := testSeq.Add(1)
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	bsvc, err := azblob.NewClientFromConnectionString(cs, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(tsvc.NewClient(fmt.Sprintf("Assets%d", n)),
		bsvc.ServiceClient().NewContainerClient(fmt.Sprintf("assets-%d", n)), opts)
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
