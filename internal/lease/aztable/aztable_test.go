package aztable_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/lease"
	"github.com/twinit/byok-backup/internal/lease/aztable"
	"github.com/twinit/byok-backup/internal/lease/leasetest"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

// TestTableStorage holds the Table Storage lease table to the conformance
// suite, against Azurite.
func TestTableStorage(t *testing.T) {
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	client := svc.NewClient("Leases")
	leasetest.Run(t, func(t *testing.T) lease.Table { return aztable.New(client) })
}
