package aztable_test

import (
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/catalog/catalogtest"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

func newStore(t *testing.T) *aztable.Store {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := aztable.New(svc.NewClient("Backups"), svc.NewClient("Restores"))
	if err := s.CreateTables(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	s := newStore(t)
	catalogtest.Run(t, func(t *testing.T) catalog.Store { return s })
}

// TestCreateTablesIdempotent: startup may run on many instances at once.
func TestCreateTablesIdempotent(t *testing.T) {
	s := newStore(t)
	if err := s.CreateTables(t.Context()); err != nil {
		t.Fatalf("second CreateTables: %v", err)
	}
}

// TestMissingTableIsNotNotFound: a missing table is a deployment fault and
// must not read as "no such backup".
func TestMissingTableIsNotNotFound(t *testing.T) {
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := aztable.New(svc.NewClient("NoSuchBackups"), svc.NewClient("NoSuchRestores"))
	_, err = s.GetBackup(t.Context(), "acme", catalog.NewID(time.Now()))
	if err == nil || errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("Get on a missing table: got %v, want an error that is not ErrNotFound", err)
	}
}

func TestRewrapConformance(t *testing.T) {
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := aztable.NewRewraps(svc.NewClient("Rewraps"))
	if err := s.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	catalogtest.RunRewraps(t, func(t *testing.T) catalog.RewrapStore { return s })
}
