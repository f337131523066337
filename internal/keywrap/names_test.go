package keywrap

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/errcode"
)

func TestValidVaultName(t *testing.T) {
	for s, want := range map[string]bool{
		"contoso-kv": true, "abc": true, "a1b": true, "A-b-C": true, strings.Repeat("a", 24): true,
		"ab": false, strings.Repeat("a", 25): false, "1abc": false, "-abc": false, "abc-": false,
		"ab--c": false, "ab_c": false, "ab.c": false, "ab c": false, "": false, "contoso-kv.evil.com": false,
		"kv/../x": false, "kv%2e": false, "kvé1": false,
	} {
		if got := ValidVaultName(s); got != want {
			t.Errorf("ValidVaultName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidKeyName(t *testing.T) {
	for s, want := range map[string]bool{
		"twinit-backup": true, "k": true, "-": true, "9": true, strings.Repeat("k", 127): true,
		"": false, strings.Repeat("k", 128): false, "a_b": false, "a/b": false, "a.b": false, "a b": false,
	} {
		if got := ValidKeyName(s); got != want {
			t.Errorf("ValidKeyName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidKeyVersion(t *testing.T) {
	for s, want := range map[string]bool{
		"78deebed173b48e48f55abf87ed4cf71": true, "78DEEBED173B48E48F55ABF87ED4CF71": true,
		"78deebed173b48e48f55abf87ed4cf7": false, "78deebed173b48e48f55abf87ed4cf712": false,
		"78deebed173b48e48f55abf87ed4cf7g": false, "": false,
	} {
		if got := ValidKeyVersion(s); got != want {
			t.Errorf("ValidKeyVersion(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidTenantID(t *testing.T) {
	for s, want := range map[string]bool{
		"72f988bf-86f1-41af-91ab-2d7cd011db47": true, "72F988BF-86F1-41AF-91AB-2D7CD011DB47": true,
		"{72f988bf-86f1-41af-91ab-2d7cd011db47}": false, "72f988bf86f141af91ab2d7cd011db47": false,
		"72f988bf-86f1-41af-91ab-2d7cd011db4": false, "72f988bf-86f1-41af-91ab_2d7cd011db47": false,
		"72f988bg-86f1-41af-91ab-2d7cd011db47": false, "common": false, "": false,
	} {
		if got := ValidTenantID(s); got != want {
			t.Errorf("ValidTenantID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestVaultURL(t *testing.T) {
	const azure = "https://{vault}.vault.azure.net/"
	for _, tc := range []struct {
		template, name, want string
		code                 errcode.Code
	}{
		{azure, "contoso-kv", "https://contoso-kv.vault.azure.net/", ""},
		{"https://{vault}.vault.azure.net", "Contoso-KV", "https://contoso-kv.vault.azure.net/", ""},
		{"https://{vault}.localhost:8443/", "kv1", "https://kv1.localhost:8443/", ""},
		{azure, "evil.com/x", "", errcode.InvalidRequest},
		{azure, "a", "", errcode.InvalidRequest},
		{azure, "kv@evil", "", errcode.InvalidRequest},
		{"http://{vault}.vault.azure.net/", "contoso-kv", "", errcode.Internal},
		{"https://vault.azure.net/{vault}", "contoso-kv", "", errcode.Internal},
		{"https://vault.azure.net/?v={vault}", "contoso-kv", "", errcode.Internal},
		{"https://{vault}@evil.com/", "contoso-kv", "", errcode.Internal},
		{"https://{vault}.{vault}.net/", "contoso-kv", "", errcode.Internal},
		{"https://fixed.vault.azure.net/", "contoso-kv", "", errcode.Internal},
	} {
		t.Run(fmt.Sprintf("%s,%s", tc.template, tc.name), func(t *testing.T) {
			got, err := VaultURL(tc.template, tc.name)
			if tc.code == "" {
				if err != nil || got != tc.want {
					t.Fatalf("VaultURL = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || errcode.CodeOf(err) != tc.code {
				t.Fatalf("VaultURL = %q, %v; want code %s", got, err, tc.code)
			}
			if tc.code == errcode.Internal && !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("template error %v does not wrap ErrInvalidTemplate", err)
			}
		})
	}
}

func TestParseKeyID(t *testing.T) {
	const v = "78deebed173b48e48f55abf87ed4cf71"
	for _, tc := range []struct{ id, vault, name, version string }{
		{"https://contoso-kv.vault.azure.net/keys/twinit-backup/" + v, "https://contoso-kv.vault.azure.net/", "twinit-backup", v},
		{"https://Contoso-KV.vault.azure.net/keys/twinit-backup", "https://contoso-kv.vault.azure.net/", "twinit-backup", ""},
		{"https://contoso-kv.vault.azure.net/keys/twinit-backup/", "https://contoso-kv.vault.azure.net/", "twinit-backup", ""},
		{"https://kv1.localhost:8443/keys/k/" + v, "https://kv1.localhost:8443/", "k", v},
	} {
		vault, name, version, err := ParseKeyID(tc.id)
		if err != nil || vault != tc.vault || name != tc.name || version != tc.version {
			t.Errorf("ParseKeyID(%q) = %q, %q, %q, %v", tc.id, vault, name, version, err)
		}
	}
	for _, id := range []string{
		"", "contoso-kv.vault.azure.net/keys/k", "http://kv.vault.azure.net/keys/k",
		"https://kv.vault.azure.net/secrets/k", "https://kv.vault.azure.net/keys/k/" + v + "/wrapkey",
		"https://kv.vault.azure.net/keys/k/notaversion", "https://kv.vault.azure.net/keys/k_1",
		"https://kv.vault.azure.net/keys/k?x=1", "https://kv.vault.azure.net/keys/k#f",
		"https://user@kv.vault.azure.net/keys/k", "https://kv.vault.azure.net/keys/%6b",
		"https://kv.vault.azure.net/keys//" + v, "https:///keys/k", "https://kv.vault.azure.net/keys",
		"https://kv.vault.azure.net/keys/k//", "https://kv.vault.azure.net/keys/../keys/k",
	} {
		if _, _, _, err := ParseKeyID(id); !errors.Is(err, ErrInvalidKeyID) || errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("ParseKeyID(%q) error = %v, want ErrInvalidKeyID/InvalidRequest", id, err)
		}
	}
}

func TestCheckKeyID(t *testing.T) {
	const tmpl = "https://{vault}.vault.azure.net/"
	const v = "78deebed173b48e48f55abf87ed4cf71"
	name, ver, err := CheckKeyID(tmpl, "contoso-kv", "https://contoso-kv.vault.azure.net/keys/twinit-backup/"+v)
	if err != nil || name != "twinit-backup" || ver != v {
		t.Fatalf("CheckKeyID = %q, %q, %v", name, ver, err)
	}
	for _, id := range []string{
		"https://evil.vault.azure.net/keys/twinit-backup/" + v,
		"https://contoso-kv.vault.azure.net.evil.com/keys/twinit-backup/" + v,
		"https://contoso-kv.vault.azure.net:444/keys/twinit-backup/" + v,
	} {
		if _, _, err := CheckKeyID(tmpl, "contoso-kv", id); !errors.Is(err, ErrInvalidKeyID) {
			t.Errorf("CheckKeyID(%q) = %v, want ErrInvalidKeyID", id, err)
		}
	}
}

func TestRefKeyIDRoundTrip(t *testing.T) {
	r := Ref{VaultURL: "https://kv1.localhost:8443/", KeyName: "k", Version: "78deebed173b48e48f55abf87ed4cf71"}
	vault, name, ver, err := ParseKeyID(r.KeyID())
	if err != nil || vault != r.VaultURL || name != r.KeyName || ver != r.Version {
		t.Fatalf("ParseKeyID(Ref.KeyID()) = %q %q %q %v", vault, name, ver, err)
	}
}

func TestVaultName(t *testing.T) {
	for in, want := range map[string]string{
		"https://contoso-kv.vault.azure.net/": "contoso-kv", "https://kv1.localhost:8443/": "kv1", "::": "::",
	} {
		if got := VaultName(in); got != want {
			t.Errorf("VaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseKeyID: key ids are read back from stored backups, i.e. untrusted.
// Whatever is accepted must round-trip through Ref.KeyID and have valid parts.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{
		"https://contoso-kv.vault.azure.net/keys/twinit-backup/78deebed173b48e48f55abf87ed4cf71",
		"https://kv1.localhost:8443/keys/k", "https://kv.vault.azure.net/keys/k/", "http://x/keys/k",
		"https://kv.vault.azure.net/keys/%6b", "https://u@h/keys/k?x#y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		vault, name, ver, err := ParseKeyID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidKeyID) {
				t.Fatalf("error %v does not wrap ErrInvalidKeyID", err)
			}
			return
		}
		if !ValidKeyName(name) || (ver != "" && !ValidKeyVersion(ver)) {
			t.Fatalf("accepted bad parts %q %q from %q", name, ver, id)
		}
		again := Ref{VaultURL: vault, KeyName: name, Version: ver}.KeyID()
		v2, n2, ver2, err := ParseKeyID(again)
		if err != nil || v2 != vault || n2 != name || ver2 != ver {
			t.Fatalf("round trip of %q via %q: %q %q %q %v", id, again, v2, n2, ver2, err)
		}
	})
}
