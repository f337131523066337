package keyvault

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// BenchmarkUnreachableVaultDefaults measures how long the default retry
// settings take to report a vault that closes every connection.
func BenchmarkUnreachableVaultDefaults(b *testing.B) {
	emu := kvemu.TestStart(b)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Options{Credentials: creds, CAPEM: emu.CAPEM()})
	if err != nil {
		b.Fatal(err)
	}
	if err := emu.CreateVault(vault, tenant, kvemu.AccessPolicy); err != nil {
		b.Fatal(err)
	}
	emu.SetFault(vault, kvemu.Fault{Down: true})
	u, _ := keywrap.VaultURL(emu.URLTemplate(), vault)
	ref := keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: keyName, TenantID: tenant}
	for b.Loop() {
		if _, err := w.Inspect(context.Background(), ref); errcode.CodeOf(err) != errcode.KeyVaultUnreachable {
			b.Fatal(err)
		}
	}
}

// FuzzDetails: error bodies come from the network. Whatever they hold,
// details must not panic and must read codes only from the JSON structure.
func FuzzDetails(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"Forbidden","message":"m","innererror":{"code":"KeyDisabled"}}}`,
		`{"error":{"code":"KeyNotFound"}}`, `{"error":null}`, `{"error":{"innererror":null}}`, `not json`, ``,
		`{"error":{"code":"Forbidden","message":"innererror KeyDisabled"}}`,
	} {
		f.Add(403, s)
	}
	f.Fuzz(func(t *testing.T, status int, body string) {
		if status < 100 || status > 599 {
			status = 500
		}
		req, _ := http.NewRequest(http.MethodGet, "https://kv.vault.azure.net/keys/k/", nil)
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		d := details(runtime.NewResponseError(resp))
		if d.status != status {
			t.Fatalf("status %d, want %d", d.status, status)
		}
		if d.inner != "" && !strings.Contains(body, "innererror") {
			t.Fatalf("inner code %q from a body without innererror", d.inner)
		}
	})
}
