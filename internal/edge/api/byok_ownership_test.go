package api

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/edge/auth"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keycheck"
)

// TestOwnershipThroughPUTValidateAndMonitor: a key whose ownership tag does
// not list the tenant is refused by PUT (422 KeyOwnershipNotProven, nothing
// stored) with the same answer whatever state the key is in; once tagged it
// is enabled; taking the tenant off the tag degrades it at the next monitor
// run (API.md §5).
func TestOwnershipThroughPUTValidateAndMonitor(t *testing.T) {
	a := newAPI(t)
	admin := a.token("acme", auth.RoleAdmin)
	a.vault("acme-kv", 2048)
	a.tag("acme-kv", "k", "beta")
	a.vault("off-kv", 2048)
	a.tag("off-kv", "k", "beta")
	must(t, a.emu.SetEnabled("off-kv", "k", "", false))
	must(t, a.emu.CreateVault("ec-kv", entraA, kvemu.AccessPolicy))
	_, err := a.emu.CreateKey("ec-kv", "k", "EC", 256, nil)
	must(t, err)
	must(t, a.emu.Grant("ec-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))

	var first string
	for _, v := range []string{"acme-kv", "off-kv", "ec-kv"} {
		r := a.do("PUT", "/api/tenants/acme/byok", admin, body(v))
		if r.status != 422 || r.code(t) != string(errcode.KeyOwnershipNotProven) {
			t.Fatalf("PUT %s: %d %s", v, r.status, r.body)
		}
		m := r.json(t)
		msg := m["error"].(map[string]any)["message"].(string)
		if !strings.Contains(msg, `"twinit-tenants"`) || !strings.Contains(msg, `"acme"`) {
			t.Fatalf("message %q does not name the tag and the value to set", msg)
		}
		checks := m["checks"].([]any)
		if len(checks) != len(keycheck.Names) || checks[3].(map[string]any)["name"] != keycheck.KeyOwnership || checks[3].(map[string]any)["ok"] != false {
			t.Fatalf("checks %v", checks)
		}
		// Beyond keyFound a foreign key looks the same, disabled or EC.
		same := strings.ReplaceAll(string(r.body), v, "VAULT")
		if first == "" {
			first = same
		} else if same != first {
			t.Fatalf("PUT %s answers differently:\n%s\n%s", v, same, first)
		}
		if r := a.do("POST", "/api/tenants/acme/byok/validate", admin, body(v)); r.status != 200 || r.code(t) != string(errcode.KeyOwnershipNotProven) {
			t.Fatalf("validate %s: %d %s", v, r.status, r.body)
		}
	}
	if st, err := a.svc.Status(bg(), "acme"); err != nil || st.State != byok.Disabled {
		t.Fatalf("a refused PUT changed the state: %+v %v", st, err)
	}

	a.tag("acme-kv", "k", "beta, acme")
	if r := a.do("PUT", "/api/tenants/acme/byok", admin, body("acme-kv")); r.status != 200 {
		t.Fatalf("PUT with the tag: %d %s", r.status, r.body)
	}
	ref, _, _, err := a.svc.CustomerKey(bg(), "acme")
	must(t, err)
	if ref.Owner != "acme" {
		t.Fatalf("backup key reference names owner %q", ref.Owner)
	}

	a.tag("acme-kv", "k", "beta")
	rep, err := a.svc.Monitor(bg())
	must(t, err)
	st, err := a.svc.Status(bg(), "acme")
	must(t, err)
	if rep.Degraded != 1 || st.State != byok.Degraded || st.LastCheck == nil || st.LastCheck.Code != string(errcode.KeyOwnershipNotProven) {
		t.Fatalf("monitor after untagging: %+v %+v", rep, st.LastCheck)
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestValidationIsRateLimitedPerTenant: validate and PUT share a per-tenant
// bucket; beyond it they answer 429 Throttled with Retry-After and reach no
// vault; another tenant is unaffected; the bucket refills with time.
func TestValidationIsRateLimitedPerTenant(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	a := newAPIWith(t, envOptions{validateBurst: 3, now: clock.now})
	a.vault("acme-kv", 2048)
	admin := a.token("acme", auth.RoleAdmin)
	for i := range 2 {
		if r := a.do("POST", "/api/tenants/acme/byok/validate", admin, body("acme-kv")); r.status != 200 {
			t.Fatalf("validate %d: %d %s", i, r.status, r.body)
		}
	}
	if r := a.do("PUT", "/api/tenants/acme/byok", admin, body("acme-kv")); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	gets := a.emu.CountOps("acme-kv", "get")
	for _, req := range [][2]string{{"POST", "/api/tenants/acme/byok/validate"}, {"PUT", "/api/tenants/acme/byok"}} {
		r := a.do(req[0], req[1], admin, body("acme-kv"))
		if r.status != 429 || r.code(t) != string(errcode.Throttled) || r.header.Get("Retry-After") != "6" {
			t.Fatalf("%s beyond the limit: %d %s Retry-After %q", req[0], r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	if n := a.emu.CountOps("acme-kv", "get"); n != gets {
		t.Fatalf("throttled requests reached the vault (%d gets)", n-gets)
	}
	// Another tenant has its own bucket.
	other := a.token("beta", auth.RoleAdmin)
	if r := a.do("POST", "/api/tenants/beta/byok/validate", other, body("acme-kv")); r.status != 200 {
		t.Fatalf("other tenant: %d %s", r.status, r.body)
	}
	clock.add(5 * time.Second)
	if r := a.do("POST", "/api/tenants/acme/byok/validate", admin, body("acme-kv")); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("after 5 s: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	clock.add(time.Second)
	r := a.do("POST", "/api/tenants/acme/byok/validate", admin, body("acme-kv"))
	if r.status != 200 || !reflect.DeepEqual(r.json(t)["ok"], true) {
		t.Fatalf("after 6 s: %d %s", r.status, r.body)
	}
}
