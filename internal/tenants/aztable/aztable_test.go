package aztable_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/tenants"
	"github.com/twinit/byok-backup/internal/tenants/aztable"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

// countGets counts list requests, to prove paging happens.
type countGets struct{ n atomic.Int32 }

func (c *countGets) Do(req *policy.Request) (*http.Response, error) {
	if req.Raw().Method == http.MethodGet {
		c.n.Add(1)
	}
	return req.Next()
}

func newTable(t *testing.T, name string, counter policy.Policy) *aztables.Client {
	t.Helper()
	opts := &aztables.ClientOptions{}
	if counter != nil {
		opts.PerCallPolicies = []policy.Policy{counter}
	}
	svc, err := aztables.NewServiceClientFromConnectionString(inst.ConnectionString(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc.NewClient(name)
}

func rawRow(t *testing.T, c *aztables.Client, pk, rk string, props map[string]any) {
	t.Helper()
	ent, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: pk, RowKey: rk}, Properties: props})
	if _, err := c.AddEntity(t.Context(), ent, nil); err != nil {
		t.Fatal(err)
	}
}

func TestEnabled(t *testing.T) {
	counter := &countGets{}
	c := newTable(t, "TenantsEnabled", counter)
	d := aztable.New(c, &aztable.Options{PageSize: 2})
	if err := d.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(t.Context()); err != nil {
		t.Fatalf("CreateTable is not idempotent: %v", err)
	}
	for _, tn := range []tenants.Tenant{{ID: "acme", BackupEnabled: true}, {ID: "globex", BackupEnabled: false}, {ID: "initech", BackupEnabled: true}} {
		if err := d.Put(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
	}
	rawRow(t, c, tenants.Partition, "absent-flag", map[string]any{"Name": "x"}) // absent = true
	rawRow(t, c, tenants.Partition, "Bad_Tenant", map[string]any{"BackupEnabled": true})
	rawRow(t, c, tenants.Partition, "string-flag", map[string]any{"BackupEnabled": "yes"})
	rawRow(t, c, "other", "not-a-tenant-row", map[string]any{"BackupEnabled": true})

	counter.n.Store(0)
	var counts tenants.Counts
	var got []string
	for id, err := range d.Enabled(t.Context(), &counts) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	slices.Sort(got)
	if want := []string{"absent-flag", "acme", "initech"}; !slices.Equal(got, want) {
		t.Fatalf("enabled tenants %v, want %v", got, want)
	}
	if counts.Enabled != 3 || counts.Disabled != 1 || counts.Invalid != 2 ||
		!slices.Equal(counts.InvalidIDs, []string{"Bad_Tenant", "string-flag"}) {
		t.Fatalf("counts %+v", counts)
	}
	// 6 rows in the partition at 2 per page: 3 requests.
	if n := counter.n.Load(); n != 3 {
		t.Fatalf("%d list requests, want 3 with PageSize 2", n)
	}

	// Flipping a tenant off takes effect; stopping early stops paging.
	if err := d.Put(t.Context(), tenants.Tenant{ID: "acme", BackupEnabled: false}); err != nil {
		t.Fatal(err)
	}
	counter.n.Store(0)
	for id, err := range d.Enabled(t.Context(), nil) {
		if err != nil || id == "acme" {
			t.Fatalf("got %q, %v", id, err)
		}
		break
	}
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("breaking out of the loop made %d requests, want 1", n)
	}
}

func TestEnabledStorageError(t *testing.T) {
	d := aztable.New(newTable(t, "NoSuchTenantsTable", nil), nil)
	n := 0
	for id, err := range d.Enabled(t.Context(), nil) {
		n++
		var re *azcore.ResponseError
		if err == nil || id != "" || !errors.As(err, &re) {
			t.Fatalf("got %q, %v; want the storage error", id, err)
		}
	}
	if n != 1 {
		t.Fatalf("yielded %d times, want the error once", n)
	}
}

func TestPutRejectsInvalidID(t *testing.T) {
	d := aztable.New(newTable(t, "TenantsPut", nil), nil)
	if err := d.Put(t.Context(), tenants.Tenant{ID: "Acme"}); !errors.Is(err, tenants.ErrInvalidID) {
		t.Fatalf("Put(Acme) = %v, want ErrInvalidID", err)
	}
}

// TestExists: any row is a tenant, enabled or not; no row is not; a
// missing table is an error, never "no such tenant".
func TestExists(t *testing.T) {
	c := newTable(t, "TenantsExists", nil)
	d := aztable.New(c, nil)
	if err := d.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(t.Context(), tenants.Tenant{ID: "acme", BackupEnabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(t.Context(), tenants.Tenant{ID: "paused", BackupEnabled: false}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"acme": true, "paused": true, "ghost": false} {
		if got, err := d.Exists(t.Context(), id); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	if _, err := d.Exists(t.Context(), "Not_An_Id"); !errors.Is(err, tenants.ErrInvalidID) {
		t.Errorf("invalid id: %v", err)
	}
	if ok, err := aztable.New(newTable(t, "NoSuchTenants", nil), nil).Exists(t.Context(), "acme"); err == nil {
		t.Errorf("missing table: Exists = %v, nil; want an error", ok)
	}
}
