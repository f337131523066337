package keywrap

import (
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
)

func TestChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := KeyInfo{KeyID: "https://contoso-kv.vault.azure.net/keys/twinit-backup/78deebed173b48e48f55abf87ed4cf71",
		Version: "78deebed173b48e48f55abf87ed4cf71", KeyType: "RSA", KeySize: 3072, Enabled: true,
		Operations: []string{"wrapKey", "unwrapKey"}}
	check := func(info KeyInfo) error {
		if err := CheckEnabled(info, now); err != nil {
			return err
		}
		if err := CheckType(info); err != nil {
			return err
		}
		return CheckOperations(info, OpWrapKey, OpUnwrapKey)
	}
	for _, tc := range []struct {
		name   string
		change func(*KeyInfo)
		code   errcode.Code
	}{
		{"ok", func(*KeyInfo) {}, ""},
		{"rsa-hsm 2048", func(k *KeyInfo) { k.KeyType, k.KeySize = "RSA-HSM", 2048 }, ""},
		{"expiry in future", func(k *KeyInfo) { k.Expires = now.Unix() + 1; k.NotBefore = now.Unix() }, ""},
		{"disabled", func(k *KeyInfo) { k.Enabled = false }, errcode.KeyDisabled},
		{"not yet valid", func(k *KeyInfo) { k.NotBefore = now.Unix() + 1 }, errcode.KeyDisabled},
		{"expired", func(k *KeyInfo) { k.Expires = now.Unix() }, errcode.KeyDisabled},
		{"ec", func(k *KeyInfo) { k.KeyType = "EC" }, errcode.UnsupportedKeyType},
		{"rsa 1024", func(k *KeyInfo) { k.KeySize = 1024 }, errcode.UnsupportedKeyType},
		{"no wrapKey", func(k *KeyInfo) { k.Operations = []string{"unwrapKey", "encrypt"} }, errcode.KeyOperationNotPermitted},
		{"no unwrapKey", func(k *KeyInfo) { k.Operations = []string{"wrapKey"} }, errcode.KeyOperationNotPermitted},
		{"no ops", func(k *KeyInfo) { k.Operations = nil }, errcode.KeyOperationNotPermitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := good
			info.Operations = append([]string(nil), good.Operations...)
			tc.change(&info)
			err := check(info)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			e, ok := errcode.As(err)
			if !ok || e.Code != tc.code {
				t.Fatalf("err = %v, want %s", err, tc.code)
			}
			if !strings.Contains(e.Message, "twinit-backup") || !strings.Contains(e.Message, "contoso-kv") {
				t.Fatalf("message does not name key and vault: %q", e.Message)
			}
		})
	}
}

func TestCheckOwnership(t *testing.T) {
	info := KeyInfo{KeyID: "https://contoso-kv.vault.azure.net/keys/twinit-backup/78deebed173b48e48f55abf87ed4cf71"}
	for _, tc := range []struct {
		tags map[string]string
		want bool
	}{
		{map[string]string{"twinit-tenants": "acme"}, true},
		{map[string]string{"twinit-tenants": "other, acme"}, true},
		{map[string]string{"twinit-tenants": "other acme-2,acme\tx"}, true},
		{map[string]string{"Twinit-Tenants": "ACME"}, true},
		{map[string]string{"twinit-tenants": "acme-sandbox"}, false},
		{map[string]string{"twinit-tenants": "acmex,xacme"}, false},
		{map[string]string{"twinit-tenants": ""}, false},
		{map[string]string{"other-tag": "acme"}, false},
		{nil, false},
	} {
		info.Tags = tc.tags
		err := CheckOwnership(info, "twinit-tenants", "acme")
		if got := err == nil; got != tc.want {
			t.Errorf("tags %v: owned = %v, want %v (%v)", tc.tags, got, tc.want, err)
		}
		if err != nil {
			e, _ := errcode.As(err)
			if e.Code != errcode.KeyOwnershipNotProven || !strings.Contains(e.Message, `"twinit-tenants"`) || !strings.Contains(e.Message, `"acme"`) {
				t.Errorf("error %v does not name the tag and value to set", err)
			}
		}
	}
	if Owns(KeyInfo{Tags: map[string]string{"twinit-tenants": "acme"}}, "twinit-tenants", "") {
		t.Error("an empty tenant is owned")
	}
}
