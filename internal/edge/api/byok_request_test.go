package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/edge/server"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

const (
	goodVault   = "contoso-kv"
	goodKey     = "twinit-backup"
	goodTenant  = "18a5c4b2-84a8-4acb-8db8-fc7073207415"
	goodVersion = "0123456789abcdef0123456789ABCDEF"
)

func TestRequestFallbackDefault(t *testing.T) {
	f := false
	for _, tc := range []struct {
		in   *bool
		want bool
	}{{nil, true}, {&f, false}} {
		set, err := byokRequest{KeyVaultName: goodVault, KeyName: goodKey, TenantID: goodTenant, FallbackToPlatformKey: tc.in}.settings()
		if err != nil {
			t.Fatal(err)
		}
		if set.FallbackToPlatformKey != tc.want {
			t.Fatalf("fallback from %v = %v, want %v", tc.in, set.FallbackToPlatformKey, tc.want)
		}
	}
}

// FuzzDecodeByokRequest feeds untrusted request bodies through the server's
// decoder and the field checks: they must never panic, and anything they accept must be
// a valid settings object whose vault name yields a URL in the template's
// host.
func FuzzDecodeByokRequest(f *testing.F) {
	f.Add([]byte(`{"keyVaultName":"contoso-kv","keyName":"twinit-backup","tenantId":"` + goodTenant + `"}`))
	f.Add([]byte(`{"keyVaultName":"contoso-kv","keyName":"k","tenantId":"` + goodTenant + `","keyVersion":"` + goodVersion + `","fallbackToPlatformKey":false}`))
	f.Add([]byte(`{"keyVaultName":"evil.com/x","keyName":"k","tenantId":"x"}`))
	f.Add([]byte(`{"keyVaultName":"a\u0000b"}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(``))
	const template = "https://{vault}.vault.azure.net/"
	f.Fuzz(func(t *testing.T, body []byte) {
		var req byokRequest
		r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		if err := server.DecodeJSON(r, &req); err != nil {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Fatalf("decode error code %s", errcode.CodeOf(err))
			}
			return
		}
		set, err := req.settings()
		if err != nil {
			if errcode.CodeOf(err) != errcode.InvalidRequest {
				t.Fatalf("check error code %s", errcode.CodeOf(err))
			}
			return
		}
		// The service builds the key's vault URL with keywrap.VaultURL.
		u, err := keywrap.VaultURL(template, set.KeyVaultName)
		if err != nil {
			t.Fatalf("accepted settings %+v build no URL: %v", set, err)
		}
		if want := "https://" + strings.ToLower(set.KeyVaultName) + ".vault.azure.net/"; u != want {
			t.Fatalf("vault URL %q, want %q", u, want)
		}
	})
}
