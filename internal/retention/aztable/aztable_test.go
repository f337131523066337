package aztable_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/retention"
	"github.com/twinit/byok-backup/internal/retention/aztable"
	"github.com/twinit/byok-backup/internal/retention/mem"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

// TestStores: both stores answer "none" for a tenant without a policy,
// return what was put, and a put replaces the whole policy.
func TestStores(t *testing.T) {
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	table := aztable.New(svc.NewClient("RetentionPoliciesTest"))
	if err := table.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := table.CreateTable(t.Context()); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	for name, s := range map[string]retention.Store{"aztable": table, "mem": &mem.Store{}} {
		t.Run(name, func(t *testing.T) {
			if _, ok, err := s.GetPolicy(t.Context(), "acme"); ok || err != nil {
				t.Fatalf("no policy: ok=%v err=%v", ok, err)
			}
			p := retention.Policy{KeepLast: 1, KeepDaily: 2, KeepWeekly: 3, KeepMonthly: 4, KeepYearly: 5}
			if err := s.PutPolicy(t.Context(), "acme", p); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.GetPolicy(t.Context(), "acme"); !ok || err != nil || got != p {
				t.Fatalf("GetPolicy = %+v %v %v", got, ok, err)
			}
			if err := s.PutPolicy(t.Context(), "acme", retention.Policy{KeepYearly: 9}); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := s.GetPolicy(t.Context(), "acme"); got != (retention.Policy{KeepYearly: 9}) {
				t.Fatalf("after replace = %+v", got)
			}
			if _, ok, _ := s.GetPolicy(t.Context(), "acme-sandbox"); ok {
				t.Fatal("another tenant sees acme's policy")
			}
		})
	}
}
