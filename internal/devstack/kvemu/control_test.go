package kvemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

// control calls the control API the way another process would.
func control(t *testing.T, e *kvemu.Emulator, url, token, body string) (int, map[string]any) {
	t.Helper()
	method := http.MethodPost
	if body == "" {
		method = http.MethodGet
	}
	req, _ := http.NewRequest(method, url, bytes.NewBufferString(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestControlAPI(t *testing.T) {
	ctx := context.Background()
	e := kvemu.TestStart(t)
	ctl := fmt.Sprintf("https://control.localhost:%d/", e.Port())
	onVault := e.VaultURL("kv1") + "_emulator/" // the prefix works on any host, even an unknown vault
	customer := kvemu.CustomerToken(appID, tenantA)

	if st, _ := control(t, e, ctl+"vaults", "", `{"name":"kv1","tenantId":"`+tenantA+`"}`); st != 401 {
		t.Fatalf("control without token: %d", st)
	}
	if st, _ := control(t, e, ctl+"vaults", customer, `{"name":"kv1","tenantId":"`+tenantA+`"}`); st != 401 {
		t.Fatalf("control with a customer token: %d", st)
	}
	steps := []struct{ url, body string }{
		{onVault + "vaults", `{"name":"kv1","tenantId":"` + tenantA + `","permissionModel":"rbac"}`},
		{ctl + "keys", `{"vault":"kv1","name":"k1","kty":"RSA","size":2048}`},
		{ctl + "grant", `{"vault":"kv1","caller":"` + customer + `","ops":["get","wrapKey","unwrapKey"]}`},
	}
	for _, s := range steps {
		if st, out := control(t, e, s.url, kvemu.AdminToken, s.body); st != 200 {
			t.Fatalf("%s: %d %v", s.url, st, out)
		}
	}
	c := newClient(t, e, "kv1", customer)
	w, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
	if err != nil {
		t.Fatalf("wrap after control setup: %v", err)
	}
	unwrap := func() error {
		_, err := c.UnwrapKey(ctx, "k1", w.KID.Version(), wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, w.Result), nil)
		return err
	}
	flips := []struct {
		path, on, off string
		want          serviceError
	}{
		{"keys/enabled", `{"vault":"kv1","name":"k1","enabled":false}`, `{"vault":"kv1","name":"k1","enabled":true}`, serviceError{403, "Forbidden", "KeyDisabled"}},
		{"keys/ops", `{"vault":"kv1","name":"k1","ops":["wrapKey"]}`, `{"vault":"kv1","name":"k1","ops":["wrapKey","unwrapKey"]}`, serviceError{403, "Forbidden", "KeyOperationForbidden"}},
		{"revoke", `{"vault":"kv1","caller":"` + customer + `"}`, `{"vault":"kv1","caller":"` + customer + `","ops":["get","wrapKey","unwrapKey"]}`, serviceError{403, "Forbidden", "ForbiddenByRbac"}},
		{"fault", `{"vault":"kv1","throttle":-1}`, `{"vault":"kv1"}`, serviceError{429, "Throttled", ""}},
		{"fault", `{"vault":"kv1","serverError":-1,"serverCode":503}`, `{"vault":"kv1"}`, serviceError{503, "ServiceUnavailable", ""}},
	}
	for _, f := range flips {
		t.Run(f.path+"/"+f.want.inner+f.want.code, func(t *testing.T) {
			if st, out := control(t, e, ctl+f.path, kvemu.AdminToken, f.on); st != 200 {
				t.Fatalf("on: %d %v", st, out)
			}
			wantServiceError(t, unwrap(), f.want)
			offPath := f.path
			if f.path == "revoke" {
				offPath = "grant"
			}
			if st, out := control(t, e, ctl+offPath, kvemu.AdminToken, f.off); st != 200 {
				t.Fatalf("off: %d %v", st, out)
			}
			if err := unwrap(); err != nil {
				t.Fatalf("after switching back: %v", err)
			}
		})
	}
	st, out := control(t, e, ctl+"keys/rotate", kvemu.AdminToken, `{"vault":"kv1","name":"k1"}`)
	if kid, _ := out["kid"].(string); st != 200 || kid == "" || kid == string(*w.KID) {
		t.Fatalf("rotate: %d %v", st, out)
	}
	if st, out := control(t, e, ctl+"keys/delete", kvemu.AdminToken, `{"vault":"kv1","name":"k1"}`); st != 200 {
		t.Fatalf("delete: %d %v", st, out)
	}
	wantServiceError(t, unwrap(), serviceError{404, "KeyNotFound", ""})
	if st, out := control(t, e, ctl+"keys", kvemu.AdminToken, `{"vault":"kv1","name":"k2","kty":"oct-HSM"}`); st != 400 {
		t.Fatalf("oct-HSM via control: %d %v", st, out)
	}
	if st, out := control(t, e, ctl+"fault", kvemu.AdminToken, `{"vault":"kv1","latency":"soon"}`); st != 400 {
		t.Fatalf("bad latency: %d %v", st, out)
	}

	// The request log over the control API (GET returns a JSON array).
	req, _ := http.NewRequest(http.MethodGet, ctl+"requests", nil)
	req.Header.Set("Authorization", "Bearer "+kvemu.AdminToken)
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var log []struct{ Op, Caller string }
	if err := json.NewDecoder(resp.Body).Decode(&log); err != nil || len(log) == 0 {
		t.Fatalf("requests: %v, %d entries", err, len(log))
	}
	resp.Body.Close()
	unwraps := 0
	for _, r := range log {
		if r.Op == "unwrapKey" && r.Caller == appID+"."+tenantA {
			unwraps++
		}
	}
	if unwraps != 2*len(flips)+1 {
		t.Fatalf("logged %d unwraps", unwraps)
	}
}

func TestConfig(t *testing.T) {
	cfgJSON := `{"vaults":[{"name":"contoso-kv","tenantId":"` + tenantA + `","permissionModel":"rbac",
	  "keys":[{"name":"twinit-backup","size":2048,"ops":["wrapKey","unwrapKey"],"tags":{"twinit-tenants":"acme"}},{"name":"ec","kty":"EC","size":256}],
	  "grants":[{"caller":"` + kvemu.CustomerToken(appID, tenantA) + `","ops":["get","wrapKey","unwrapKey"]},
	            {"caller":"platform","ops":["get"]}]}]}`
	cfg, err := kvemu.ParseConfig([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	e := kvemu.TestStart(t)
	if err := e.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := newClient(t, e, "contoso-kv", kvemu.CustomerToken(appID, tenantA))
	k, err := c.GetKey(ctx, "twinit-backup", "", nil)
	if err != nil || *k.Key.Kty != azkeys.KeyTypeRSA || len(k.Key.KeyOps) != 2 {
		t.Fatalf("configured key: %v", err)
	}
	if tag := k.Tags["twinit-tenants"]; tag == nil || *tag != "acme" {
		t.Fatalf("configured key's tags: %v", k.Tags)
	}
	if _, err := c.WrapKey(ctx, "twinit-backup", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, e, "contoso-kv", kvemu.PlatformToken)
	if _, err := p.GetKey(ctx, "ec", "", nil); err != nil {
		t.Fatalf("platform get: %v", err)
	}
	_, err = p.WrapKey(ctx, "twinit-backup", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
	wantServiceError(t, err, serviceError{403, "Forbidden", "ForbiddenByRbac"})

	for _, bad := range []string{
		`{"vaults":[{"name":"kv1","tenantId":"t","permissonModel":"rbac"}]}`,                        // typo
		`{"vaults":[{"name":"kv1","tenantId":"t","permissionModel":"acl"}]}`,                        // model
		`{"vaults":[{"name":"kv2","tenantId":"t","keys":[{"name":"k","kty":"oct"}]}]}`,              // kty
		`{"vaults":[{"name":"kv3","tenantId":"t","grants":[{"caller":"platform","ops":["all"]}]}]}`, // op
	} {
		cfg, err := kvemu.ParseConfig([]byte(bad))
		if err == nil {
			err = e.Apply(cfg)
		}
		if err == nil {
			t.Errorf("config accepted: %s", bad)
		}
	}
}

// Tags are set at creation and replaced later through the control API, the
// in-process API and the data plane (UpdateKey, as a key owner does), and
// every GET returns the version's tags (API.md §5 reads them).
func TestKeyTags(t *testing.T) {
	ctx := context.Background()
	e := kvemu.TestStart(t)
	ctl := fmt.Sprintf("https://control.localhost:%d/", e.Port())
	customer := kvemu.CustomerToken(appID, tenantA)
	for _, s := range []struct{ url, body string }{
		{ctl + "vaults", `{"name":"kv1","tenantId":"` + tenantA + `"}`},
		{ctl + "keys", `{"vault":"kv1","name":"k1","kty":"RSA","size":2048,"tags":{"twinit-tenants":"acme"}}`},
		{ctl + "grant", `{"vault":"kv1","caller":"` + customer + `","ops":["get","update"]}`},
	} {
		if st, out := control(t, e, s.url, kvemu.AdminToken, s.body); st != 200 {
			t.Fatalf("%s: %d %v", s.url, st, out)
		}
	}
	c := newClient(t, e, "kv1", customer)
	tags := func() map[string]string {
		t.Helper()
		resp, err := c.GetKey(ctx, "k1", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for k, v := range resp.Tags {
			out[k] = *v
		}
		return out
	}
	if got := tags(); got["twinit-tenants"] != "acme" || len(got) != 1 {
		t.Fatalf("tags after create = %v", got)
	}
	if st, out := control(t, e, ctl+"keys/tags", kvemu.AdminToken, `{"vault":"kv1","name":"k1","tags":{"twinit-tenants":"acme, beta"}}`); st != 200 {
		t.Fatalf("keys/tags: %d %v", st, out)
	}
	if got := tags(); got["twinit-tenants"] != "acme, beta" {
		t.Fatalf("tags after control update = %v", got)
	}
	v := "zeta"
	if _, err := c.UpdateKey(ctx, "k1", "", azkeys.UpdateKeyParameters{Tags: map[string]*string{"twinit-tenants": &v}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := tags(); got["twinit-tenants"] != "zeta" {
		t.Fatalf("tags after UpdateKey = %v", got)
	}
	if err := e.SetTags("kv1", "k1", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := tags(); len(got) != 0 {
		t.Fatalf("tags after SetTags(nil) = %v", got)
	}
	if err := e.SetTags("kv1", "k1", "", map[string]string{"t": strings.Repeat("x", 257)}); err == nil {
		t.Fatal("a 257-character tag value was accepted")
	}
}
