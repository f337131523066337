package azure

import (
	"context"
	"flag"
	"fmt"
	"os"
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

func TestMain(m *testing.M) {
	flag.Parse()
	// Fuzzing (-test.fuzz, and its worker processes) only decodes bytes:
	// starting Azurite in every worker would starve the fuzzer.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	inst, err := azurite.Start(context.Background(), azurite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "azurite:", err)
		os.Exit(1)
	}
	testAzurite = inst
	code := m.Run()
	inst.Stop()
	os.Exit(code)
}

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
