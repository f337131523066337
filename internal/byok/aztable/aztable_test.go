package aztable_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/byok/aztable"
	"github.com/twinit/byok-backup/internal/byok/storetest"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

var storage *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &storage) }

var tableSeq atomic.Int64

// newStore returns a Store over a fresh table of the shared Azurite.
func newStore(t *testing.T) *aztable.Store {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := aztable.New(svc.NewClient(fmt.Sprintf("ByokSettings%d", tableSeq.Add(1))))
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTable(context.Background()); err != nil {
		t.Fatalf("CreateTable is not idempotent: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) byok.Store { return newStore(t) })
}

func TestStorageCheck(t *testing.T) {
	if err := newStore(t).Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on the discard port: the check must fail.
	cs := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devKey + ";TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
	svc, err := aztables.NewServiceClientFromConnectionString(cs, &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := aztable.New(svc.NewClient("ByokSettings")).Check(t.Context()); err == nil {
		t.Fatal("Check of unreachable storage succeeded")
	}
}

// devKey is Azurite's well-known development account key.
const devKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
