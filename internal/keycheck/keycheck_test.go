package keycheck

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/testing/fatal"
)

const (
	appID  = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	vault  = "contoso-kv"
	key    = "twinit-backup"
)

type env struct {
	emu *kvemu.Emulator
	w   *keyvault.Wrapper
}

func setup(t *testing.T) *env { return setupTag(t, "") }

// setupTag is setup with the ownership check on tag ("" = off).
func setupTag(t *testing.T, tag string) *env {
	t.Helper()
	emu := kvemu.TestStart(t)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	must(t, err)
	w, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM(),
		MaxRetries: 1, RetryDelay: 10 * time.Millisecond, TryTimeout: 5 * time.Second, OwnershipTag: tag})
	must(t, err)
	must(t, emu.CreateVault(vault, tenant, kvemu.AccessPolicy))
	must(t, emu.Grant(vault, kvemu.CustomerToken(appID, tenant), "get", "wrapKey", "unwrapKey"))
	return &env{emu: emu, w: w}
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr

func (e *env) ref(t *testing.T, vaultName, keyName string) keywrap.Ref {
	u, err := keywrap.VaultURL(e.emu.URLTemplate(), vaultName)
	must(t, err)
	return keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: keyName, TenantID: tenant}
}

// wantFailure asserts the run stopped at check `at` with code, every
// earlier check ok, every later one "not checked".
func wantFailure(t *testing.T, r Result, at string, code errcode.Code) {
	t.Helper()
	if r.OK || r.Err == nil || r.Err.Code != code {
		t.Fatalf("result ok=%v err=%v, want failure %s at %s; checks %+v", r.OK, r.Err, code, at, r.Checks)
	}
	checkShape(t, r)
	seen := false
	for _, c := range r.Checks {
		switch {
		case c.Name == at:
			seen = true
			if c.OK || c.Detail != r.Err.Message {
				t.Fatalf("failing check %+v, want ok=false with the error message", c)
			}
		case !seen && !c.OK:
			t.Fatalf("check %s before %s failed: %+v", c.Name, at, c)
		case seen && (c.OK || !strings.HasPrefix(c.Detail, "not checked:")):
			t.Fatalf("check %s after %s: %+v, want not checked", c.Name, at, c)
		}
	}
	if strings.Contains(r.Err.Message, "AKV") || strings.Contains(r.Err.Message, "{") {
		t.Fatalf("message leaks response text: %q", r.Err.Message)
	}
}

func checkShape(t *testing.T, r Result) {
	t.Helper()
	if len(r.Checks) != len(Names) {
		t.Fatalf("%d checks, want %d: %+v", len(r.Checks), len(Names), r.Checks)
	}
	for i, c := range r.Checks {
		if c.Name != Names[i] {
			t.Fatalf("check %d is %s, want %s", i, c.Name, Names[i])
		}
	}
}

func TestValidKey(t *testing.T) {
	e := setup(t)
	kid, err := e.emu.CreateKey(vault, key, "RSA-HSM", 3072, nil)
	must(t, err)
	r := Validate(context.Background(), e.w, e.ref(t, vault, key))
	if !r.OK || r.Err != nil || r.KeyID != kid || r.KeyType != "RSA-HSM" || r.KeySize != 3072 {
		t.Fatalf("result %+v, want ok with %s", r, kid)
	}
	checkShape(t, r)
	for _, c := range r.Checks {
		if !c.OK || c.Detail == "" {
			t.Fatalf("check %+v", c)
		}
	}
	if e.emu.CountOps(vault, "wrapKey") != 1 || e.emu.CountOps(vault, "unwrapKey") != 1 {
		t.Fatal("round trip did not wrap and unwrap once each")
	}
}

func TestEveryFailureEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env) keywrap.Ref
		at    string
		code  errcode.Code
	}{
		{"vault unreachable", func(t *testing.T, e *env) keywrap.Ref { return e.ref(t, "nosuch-kv", key) },
			VaultReachable, errcode.KeyVaultUnreachable},
		{"wrong tenant", func(t *testing.T, e *env) keywrap.Ref {
			must(t, e.emu.CreateVault("other-kv", "0b9a0d7e-6c1e-4d77-9a57-1b2c3d4e5f60", kvemu.AccessPolicy))
			return e.ref(t, "other-kv", key)
		}, Authenticated, errcode.KeyVaultAuthFailed},
		{"key missing", func(t *testing.T, e *env) keywrap.Ref { return e.ref(t, vault, "nosuch") },
			KeyFound, errcode.KeyNotFound},
		{"no get grant", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			must(t, e.emu.Revoke(vault, kvemu.CustomerToken(appID, tenant)))
			return e.ref(t, vault, key)
		}, KeyFound, errcode.KeyAccessDenied},
		{"disabled", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			must(t, e.emu.SetEnabled(vault, key, "", false))
			return e.ref(t, vault, key)
		}, KeyEnabled, errcode.KeyDisabled},
		{"expired", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			must(t, e.emu.SetExpiry(vault, key, "", time.Time{}, time.Now().Add(-time.Minute)))
			return e.ref(t, vault, key)
		}, KeyEnabled, errcode.KeyDisabled},
		{"EC key", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "EC", 256, nil)
			must(t, err)
			return e.ref(t, vault, key)
		}, KeyType, errcode.UnsupportedKeyType},
		{"unwrapKey not permitted", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, []string{"wrapKey", "encrypt"})
			must(t, err)
			return e.ref(t, vault, key)
		}, KeyOperations, errcode.KeyOperationNotPermitted},
		{"no wrapKey grant", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			must(t, e.emu.Revoke(vault, kvemu.CustomerToken(appID, tenant)))
			must(t, e.emu.Grant(vault, kvemu.CustomerToken(appID, tenant), "get"))
			return e.ref(t, vault, key)
		}, WrapRoundTrip, errcode.KeyAccessDenied},
		{"no unwrapKey grant", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			must(t, e.emu.Revoke(vault, kvemu.CustomerToken(appID, tenant)))
			must(t, e.emu.Grant(vault, kvemu.CustomerToken(appID, tenant), "get", "wrapKey"))
			return e.ref(t, vault, key)
		}, WrapRoundTrip, errcode.KeyAccessDenied},
		{"throttled", func(t *testing.T, e *env) keywrap.Ref {
			_, err := e.emu.CreateKey(vault, key, "RSA", 2048, nil)
			must(t, err)
			e.emu.SetFault(vault, kvemu.Fault{Throttle: -1})
			return e.ref(t, vault, key)
		}, KeyFound, errcode.KeyValidationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			r := Validate(context.Background(), e.w, tc.setup(t, e))
			wantFailure(t, r, tc.at, tc.code)
		})
	}
}

// fakeWrapper is a function-field fake for outcomes the emulator can't give.
type fakeWrapper struct {
	info   keywrap.KeyInfo
	unwrap func([]byte) ([]byte, error)
}

func (f fakeWrapper) Inspect(context.Context, keywrap.Ref) (keywrap.KeyInfo, error) {
	return f.info, nil
}
func (f fakeWrapper) Wrap(_ context.Context, ref keywrap.Ref, dk []byte) (keywrap.Wrapped, error) {
	return keywrap.Wrapped{KeyID: ref.KeyID(), Version: ref.Version, WrappedKey: append([]byte(nil), dk...)}, nil
}
func (f fakeWrapper) Unwrap(_ context.Context, _ keywrap.Ref, w keywrap.Wrapped) ([]byte, error) {
	return f.unwrap(w.WrappedKey)
}

func TestRoundTripMismatchAndInternal(t *testing.T) {
	info := keywrap.KeyInfo{KeyID: "https://contoso-kv.vault.azure.net/keys/k/78deebed173b48e48f55abf87ed4cf71",
		Version: "78deebed173b48e48f55abf87ed4cf71", KeyType: "RSA", KeySize: 2048, Enabled: true,
		Operations: []string{"wrapKey", "unwrapKey"}}
	ref := keywrap.Ref{Source: keywrap.Customer, VaultURL: "https://contoso-kv.vault.azure.net/", KeyName: "k", TenantID: tenant}
	r := Validate(context.Background(), fakeWrapper{info: info, unwrap: func(b []byte) ([]byte, error) {
		b[0] ^= 1
		return b, nil
	}}, ref)
	wantFailure(t, r, WrapRoundTrip, errcode.KeyValidationFailed)
	r = Validate(context.Background(), fakeWrapper{info: info, unwrap: func([]byte) ([]byte, error) {
		return nil, errors.New("boom: secret response text")
	}}, ref)
	wantFailure(t, r, WrapRoundTrip, errcode.KeyValidationFailed)
	if strings.Contains(r.Err.Message, "boom") || !errors.Is(r.Err, r.Err.Err) {
		t.Fatalf("internal cause leaked: %q", r.Err.Message)
	}
}

func TestCheckJSON(t *testing.T) {
	b, err := json.Marshal(Check{Name: KeyFound, OK: true, Detail: "d"})
	must(t, err)
	if string(b) != `{"name":"keyFound","ok":true,"detail":"d"}` {
		t.Fatalf("json %s", b)
	}
}

// keyOwnership runs right after keyFound (API.md §5). A key not tagged for
// the tenant gets one and the same answer whatever its state (enabled or
// not, RSA or not, any key_ops): nothing beyond keyFound is revealed, not
// even its key id, type or size.
func TestOwnership(t *testing.T) {
	const owner = "acme"
	e := setupTag(t, keywrap.DefaultOwnershipTag)
	ctx := context.Background()
	ref := func(name string) keywrap.Ref {
		r := e.ref(t, vault, name)
		r.Owner = owner
		return r
	}
	_, err := e.emu.CreateKey(vault, "plain", "RSA", 2048, nil)
	must(t, err)
	_, err = e.emu.CreateKey(vault, "disabled", "RSA", 2048, nil)
	must(t, err)
	must(t, e.emu.SetEnabled(vault, "disabled", "", false))
	_, err = e.emu.CreateKey(vault, "ec", "EC", 256, nil)
	must(t, err)
	_, err = e.emu.CreateKey(vault, "noops", "RSA", 2048, []string{"encrypt"})
	must(t, err)
	_, err = e.emu.CreateKey(vault, "other", "RSA", 2048, nil)
	must(t, err)
	must(t, e.emu.SetTags(vault, "other", "", map[string]string{"twinit-tenants": "beta"}))

	var first []byte
	for _, name := range []string{"plain", "disabled", "ec", "noops", "other"} {
		r := Validate(ctx, e.w, ref(name))
		wantFailure(t, r, KeyOwnership, errcode.KeyOwnershipNotProven)
		if r.KeyID != "" || r.KeyType != "" || r.KeySize != 0 {
			t.Fatalf("%s: result reveals the key: %+v", name, r)
		}
		if !strings.Contains(r.Err.Message, `"twinit-tenants"`) || !strings.Contains(r.Err.Message, `"acme"`) {
			t.Fatalf("message %q does not name the tag and value to set", r.Err.Message)
		}
		// Same checks, same words, apart from the key's name.
		b, err := json.Marshal(r.Checks)
		must(t, err)
		b = []byte(strings.ReplaceAll(string(b), "Key "+name+" ", "Key KEY "))
		if first == nil {
			first = b
		} else if string(b) != string(first) {
			t.Fatalf("%s answers differently:\n%s\n%s", name, b, first)
		}
	}
	if n := e.emu.CountOps(vault, "wrapKey"); n != 0 {
		t.Fatalf("wrapKey called %d times for keys not tagged for the tenant", n)
	}
	wantFailure(t, Validate(ctx, e.w, ref("nosuch")), KeyFound, errcode.KeyNotFound)

	must(t, e.emu.SetTags(vault, "plain", "", map[string]string{"twinit-tenants": "beta,acme"}))
	r := Validate(ctx, e.w, ref("plain"))
	if !r.OK {
		t.Fatalf("tagged key: %+v", r)
	}
	checkShape(t, r)
	if c := r.Checks[3]; c.Name != KeyOwnership || !c.OK || !strings.Contains(c.Detail, "twinit-tenants") {
		t.Fatalf("ownership check %+v", c)
	}
	// A tagged but disabled key now says so.
	must(t, e.emu.SetTags(vault, "disabled", "", map[string]string{"twinit-tenants": "acme"}))
	wantFailure(t, Validate(ctx, e.w, ref("disabled")), KeyEnabled, errcode.KeyDisabled)
}
