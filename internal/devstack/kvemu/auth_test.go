package kvemu_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

func TestChallengeNamesVaultTenant(t *testing.T) {
	e, _ := vaultWithKey(t, kvemu.AccessPolicy)
	req, _ := http.NewRequest(http.MethodPost, e.VaultURL("kv1")+"keys/k1/wrapkey?api-version=2025-07-01", strings.NewReader(`{"alg":"RSA-OAEP-256","value":"AAAA"}`))
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `Bearer authorization="https://login.microsoftonline.com/` + tenantA + `", resource="https://vault.azure.net"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if !strings.Contains(string(body), `"code":"Unauthorized"`) {
		t.Fatalf("body %s", body)
	}

	// The real client gets the tenant from the challenge.
	tenants := make(chan string, 1)
	c := newClientOpts(t, e, "kv1", staticCred{token: kvemu.AdminToken, tenants: tenants}, policy.RetryOptions{MaxRetries: -1}, "")
	if _, err := c.GetKey(context.Background(), "k1", "", nil); err != nil {
		t.Fatal(err)
	}
	if got := <-tenants; got != tenantA {
		t.Fatalf("credential asked for tenant %q, want %q", got, tenantA)
	}
}

func TestWrongTenantIsUnauthorized(t *testing.T) {
	e, _ := vaultWithKey(t, kvemu.AccessPolicy)
	if err := e.Grant("kv1", kvemu.CustomerToken(appID, tenantB), "get", "wrapKey", "unwrapKey"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, "kv1", kvemu.CustomerToken(appID, tenantB))
	_, err := c.GetKey(context.Background(), "k1", "", nil)
	wantServiceError(t, err, serviceError{401, "Unauthorized", ""})

	c = newClient(t, e, "kv1", "not-an-emulator-token")
	_, err = c.GetKey(context.Background(), "k1", "", nil)
	wantServiceError(t, err, serviceError{401, "Unauthorized", ""})
}

func TestGrantsAndRevoke(t *testing.T) {
	for _, tc := range []struct {
		model kvemu.PermissionModel
		inner string
	}{{kvemu.AccessPolicy, "ForbiddenByPolicy"}, {kvemu.RBAC, "ForbiddenByRbac"}} {
		t.Run(fmt.Sprintf("model=%s", tc.model), func(t *testing.T) {
			ctx := context.Background()
			e, admin := vaultWithKey(t, tc.model)
			denied := serviceError{403, "Forbidden", tc.inner}
			for _, token := range []string{kvemu.CustomerToken(appID, tenantA), kvemu.PlatformToken} {
				c := newClient(t, e, "kv1", token)
				// No grant: every operation is denied, before the key is looked up.
				_, err := c.GetKey(ctx, "k1", "", nil)
				wantServiceError(t, err, denied)
				_, err = c.GetKey(ctx, "missing", "", nil)
				wantServiceError(t, err, denied)

				if err := e.Grant("kv1", token, "get", "wrapKey", "unwrapKey"); err != nil {
					t.Fatal(err)
				}
				if _, err := c.GetKey(ctx, "k1", "", nil); err != nil {
					t.Fatalf("granted get: %v", err)
				}
				w, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
				if err != nil {
					t.Fatalf("granted wrap: %v", err)
				}
				// Granted ops only: no rotate.
				_, err = c.RotateKey(ctx, "k1", nil)
				wantServiceError(t, err, denied)

				if err := e.Revoke("kv1", token); err != nil {
					t.Fatal(err)
				}
				_, err = c.UnwrapKey(ctx, "k1", w.KID.Version(), wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, w.Result), nil)
				wantServiceError(t, err, denied)
			}
			// The admin is never denied.
			if _, err := admin.RotateKey(ctx, "k1", nil); err != nil {
				t.Fatalf("admin rotate: %v", err)
			}
		})
	}
}

func TestGrantValidation(t *testing.T) {
	e := kvemu.TestStart(t)
	if err := e.CreateVault("kv1", tenantA, kvemu.RBAC); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant("kv1", kvemu.PlatformToken, "fly"); err == nil {
		t.Error("unknown op accepted")
	}
	if err := e.Grant("nokv", kvemu.PlatformToken, "get"); err == nil {
		t.Error("unknown vault accepted")
	}
	if err := e.Grant("kv1", "emulator.", "get"); err == nil {
		t.Error("empty caller accepted")
	}
	if err := e.CreateVault("kv1", tenantA, kvemu.RBAC); err == nil {
		t.Error("duplicate vault accepted")
	}
	for _, bad := range []string{"ab", "1kv", "kv--1", "control", "kv.1", strings.Repeat("a", 25)} {
		if err := e.CreateVault(bad, tenantA, kvemu.RBAC); err == nil {
			t.Errorf("vault name %q accepted", bad)
		}
	}
}
