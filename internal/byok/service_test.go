package byok

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keycheck"
)

func TestConfigureEnablesAndStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	kid := e.vault("acme-kv", 3072)

	st, err := e.svc.Status(bg(), "acme")
	must(t, err)
	if st.State != Disabled || st.ETag != `"0"` || st.KeyID != "" || st.LastCheck != nil || !st.FallbackToPlatformKey || st.ApplicationID != appID {
		t.Fatalf("status before configuring = %+v", st)
	}

	set := settingsFor("acme-kv")
	set.FallbackToPlatformKey = false
	st, err = e.svc.Configure(bg(), "acme", set, "")
	must(t, err)
	if st.State != Active || st.KeyID != kid || st.KeyType != "RSA" || st.KeySize != 3072 || st.ETag != `"1"` ||
		st.KeyVaultName != "acme-kv" || st.KeyName != "k" || st.TenantID != entraA || st.KeyVersion != "" ||
		st.FallbackToPlatformKey || st.EnabledAt == nil || st.DegradedSince != nil || st.LastCheck == nil || !st.LastCheck.OK {
		t.Fatalf("status after configuring = %+v", st)
	}
	got, err := e.svc.Status(bg(), "acme")
	must(t, err)
	if got.KeyID != kid || got.State != Active || got.ETag != `"1"` || !got.EnabledAt.Equal(*st.EnabledAt) {
		t.Fatalf("stored status = %+v, want %+v", got, st)
	}
	if n := e.emu.CountOps("acme-kv", "wrapKey"); n != 1 {
		t.Fatalf("validation wrapped %d times, want 1", n)
	}
}

func TestConfigurePinnedVersion(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := e.vault("pin-kv", 2048)
	second, err := e.emu.RotateKey("pin-kv", "k")
	must(t, err)
	set := settingsFor("pin-kv")
	set.KeyVersion = version(first)
	st, err := e.svc.Configure(bg(), "acme", set, "")
	must(t, err)
	if st.KeyID != first || st.KeyVersion != version(first) {
		t.Fatalf("pinned status keyId %s version %s, want %s", st.KeyID, st.KeyVersion, first)
	}
	ref, _, enabled, err := e.svc.CustomerKey(bg(), "acme")
	must(t, err)
	if !enabled || ref.Version != version(first) || ref.TenantID != entraA || !strings.Contains(ref.VaultURL, "pin-kv.localhost") {
		t.Fatalf("CustomerKey = %+v enabled=%v", ref, enabled)
	}
	set.KeyVersion = ""
	st, err = e.svc.Configure(bg(), "acme", set, "")
	must(t, err)
	if st.KeyID != second || st.KeyVersion != "" {
		t.Fatalf("unpinned keyId %s, want the current %s", st.KeyID, second)
	}
}

// TestConfigureFailures proves every 422 cause, and that a failed
// validation changes nothing.
func TestConfigureFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("good-kv", 2048)
	must(t, e.emu.CreateVault("denied-kv", entraA, kvemu.AccessPolicy))
	_, err := e.emu.CreateKey("denied-kv", "k", "RSA", 2048, nil)
	must(t, err)
	e.vault("off-kv", 2048)
	must(t, e.emu.SetEnabled("off-kv", "k", "", false))
	e.vault("ops-kv", 2048)
	must(t, e.emu.SetKeyOps("ops-kv", "k", "", []string{"encrypt", "decrypt"}))
	must(t, e.emu.CreateVault("ec-kv", entraA, kvemu.AccessPolicy))
	_, err = e.emu.CreateKey("ec-kv", "k", "EC", 256, nil)
	must(t, err)
	e.tag("ec-kv", "k", owners)
	must(t, e.emu.Grant("ec-kv", kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
	e.vault("down-kv", 2048)
	e.emu.SetFault("down-kv", kvemu.Fault{Down: true})

	// A tenant that already has working settings keeps them.
	before, err := e.svc.Configure(bg(), "acme", settingsFor("good-kv"), "")
	must(t, err)

	for _, tc := range []struct {
		name  string
		set   Settings
		code  errcode.Code
		check string
		says  string
	}{
		{"KeyNotFound", Settings{KeyVaultName: "good-kv", KeyName: "nope", TenantID: entraA}, errcode.KeyNotFound, keycheck.KeyFound, "not found"},
		{"KeyDisabled", settingsFor("off-kv"), errcode.KeyDisabled, keycheck.KeyEnabled, "disabled"},
		{"KeyAccessDenied", settingsFor("denied-kv"), errcode.KeyAccessDenied, keycheck.KeyFound, appID},
		{"KeyVaultAuthFailed", Settings{KeyVaultName: "good-kv", KeyName: "k", TenantID: entraB}, errcode.KeyVaultAuthFailed, keycheck.Authenticated, appID},
		{"KeyVaultUnreachable/down", settingsFor("down-kv"), errcode.KeyVaultUnreachable, keycheck.VaultReachable, "could not be reached"},
		{"KeyVaultUnreachable/unknown", settingsFor("nosuch-kv"), errcode.KeyVaultUnreachable, keycheck.VaultReachable, "could not be reached"},
		{"KeyOperationNotPermitted", settingsFor("ops-kv"), errcode.KeyOperationNotPermitted, keycheck.KeyOperations, "wrapKey and unwrapKey"},
		{"UnsupportedKeyType", settingsFor("ec-kv"), errcode.UnsupportedKeyType, keycheck.KeyType, "RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Configure(bg(), "acme", tc.set, "")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Configure = %v, want a ValidationError", err)
			}
			if ve.Err.Code != tc.code || errcode.Status(ve.Err.Code) != 422 {
				t.Fatalf("code %s, want %s (message %q)", ve.Err.Code, tc.code, ve.Err.Message)
			}
			if !strings.Contains(ve.Err.Message, tc.says) {
				t.Fatalf("message %q does not say %q", ve.Err.Message, tc.says)
			}
			if len(ve.Checks) != len(keycheck.Names) {
				t.Fatalf("checks %+v, want all %d", ve.Checks, len(keycheck.Names))
			}
			for i, c := range ve.Checks {
				failed := c.Name == tc.check
				if c.Name != keycheck.Names[i] || (c.OK == failed) && i <= indexOf(tc.check) {
					t.Fatalf("check %d = %+v; the first failure must be %s", i, c, tc.check)
				}
			}
			after, err := e.svc.Status(bg(), "acme")
			must(t, err)
			if after.ETag != before.ETag || after.KeyID != before.KeyID || after.State != Active {
				t.Fatalf("failed validation changed the settings: %+v", after)
			}
		})
	}
}

func indexOf(check string) int {
	for i, c := range keycheck.Names {
		if c == check {
			return i
		}
	}
	return -1
}

// TestInvalidInputSendsNothing proves malformed settings are refused
// before any request leaves for Key Vault.
func TestInvalidInputSendsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("acme-kv", 2048)
	e.emu.ResetRequests()
	for _, set := range []Settings{
		{KeyVaultName: "x", KeyName: "k", TenantID: entraA},
		{KeyVaultName: "evil.com#", KeyName: "k", TenantID: entraA},
		{KeyVaultName: "acme-kv", KeyName: "k/../x", TenantID: entraA},
		{KeyVaultName: "acme-kv", KeyName: "k", TenantID: "not-a-guid"},
		{KeyVaultName: "acme-kv", KeyName: "k", TenantID: entraA, KeyVersion: "latest"},
	} {
		if _, err := e.svc.Configure(bg(), "acme", set, ""); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("Configure(%+v) = %v, want InvalidRequest", set, err)
		}
		if _, err := e.svc.Validate(bg(), "acme", &set); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("Validate(%+v) = %v, want InvalidRequest", set, err)
		}
	}
	if _, err := e.svc.Configure(bg(), "Bad_Tenant", settingsFor("acme-kv"), ""); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Errorf("bad tenant: %v", err)
	}
	if reqs := e.emu.Requests(); len(reqs) != 0 {
		t.Fatalf("invalid input sent %d requests to Key Vault: %+v", len(reqs), reqs)
	}
}

// TestConcurrentConfigure races two admins: exactly one wins.
func TestConcurrentConfigure(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("one-kv", 2048)
	e.vault("two-kv", 2048)
	race := func(ifMatch string) (wins, conflicts int) {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, v := range []string{"one-kv", "two-kv"} {
			wg.Go(func() { _, errs[i] = e.svc.Configure(bg(), "acme", settingsFor(v), ifMatch) })
		}
		wg.Wait()
		for _, err := range errs {
			switch errcode.CodeOf(err) {
			case errcode.Internal:
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				wins++
			case errcode.Conflict:
				conflicts++
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		return wins, conflicts
	}
	t.Run("ifMatch", func(t *testing.T) {
		st, err := e.svc.Status(bg(), "acme")
		must(t, err)
		if w, c := race(st.ETag); w != 1 || c != 1 {
			t.Fatalf("with If-Match %s: %d wins, %d conflicts; want 1 and 1", st.ETag, w, c)
		}
		// The loser's If-Match is stale now.
		if _, err := e.svc.Configure(bg(), "acme", settingsFor("one-kv"), st.ETag); errcode.CodeOf(err) != errcode.Conflict {
			t.Fatalf("stale If-Match: %v, want Conflict", err)
		}
	})
	t.Run("noHeader", func(t *testing.T) {
		// Slow vaults keep both validations in flight while both have read
		// the row: the second write must notice the first.
		e.emu.SetFault("", kvemu.Fault{Latency: 150 * time.Millisecond})
		defer e.emu.SetFault("", kvemu.Fault{})
		if w, c := race(""); w != 1 || c != 1 {
			t.Fatalf("without If-Match: %d wins, %d conflicts; want 1 and 1", w, c)
		}
	})
}

// TestSystemWriteDoesNotStaleETag: the monitor and key use don't change the
// ETag an admin holds.
func TestSystemWriteDoesNotStaleETag(t *testing.T) {
	e := newEnv(t, envOptions{inMemoryKeys: true})
	e.vault("acme-kv", 2048)
	st, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)
	must(t, e.svc.RecordKeyUse(bg(), "acme", errcode.New(errcode.KeyDisabled, "x")))
	if _, err := e.svc.Monitor(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Disable(bg(), "acme", st.ETag); err != nil {
		t.Fatalf("Disable with the ETag from before system writes: %v", err)
	}
}

func TestDisable(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.vault("acme-kv", 2048)
	// Disabling a tenant that never configured BYOK is a no-op.
	st, err := e.svc.Disable(bg(), "acme", "")
	must(t, err)
	if st.State != Disabled || st.ETag != `"0"` {
		t.Fatalf("disable of unconfigured = %+v", st)
	}
	on, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), `"0"`)
	must(t, err)
	if _, err := e.svc.Disable(bg(), "acme", `"0"`); errcode.CodeOf(err) != errcode.Conflict {
		t.Fatalf("Disable with stale If-Match = %v, want Conflict", err)
	}
	e.emu.ResetRequests()
	st, err = e.svc.Disable(bg(), "acme", on.ETag)
	must(t, err)
	if st.State != Disabled || st.KeyID != "" || st.LastCheck != nil || st.EnabledAt != nil || st.ETag != `"2"` {
		t.Fatalf("status after disable = %+v", st)
	}
	if len(e.emu.Requests()) != 0 {
		t.Fatal("disabling called Key Vault")
	}
	if _, _, enabled, err := e.svc.CustomerKey(bg(), "acme"); err != nil || enabled {
		t.Fatalf("CustomerKey after disable: enabled=%v err=%v", enabled, err)
	}
	// Re-enabling starts a new enabledAt.
	again, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), st.ETag)
	must(t, err)
	if again.State != Active || again.EnabledAt == nil || again.ETag != `"3"` {
		t.Fatalf("re-enabled status = %+v", again)
	}
}

func TestValidate(t *testing.T) {
	e := newEnv(t, envOptions{inMemoryKeys: true})
	e.vault("acme-kv", 2048)
	e.vault("off-kv", 2048)
	must(t, e.kv.SetEnabled("off-kv", "k", "", false))

	if _, err := e.svc.Validate(bg(), "acme", nil); errcode.CodeOf(err) != errcode.NotFound {
		t.Fatalf("Validate with nothing stored = %v, want NotFound", err)
	}
	set := settingsFor("acme-kv")
	res, err := e.svc.Validate(bg(), "acme", &set)
	must(t, err)
	if !res.OK || len(res.Checks) != len(keycheck.Names) || res.Error != nil {
		t.Fatalf("Validate body = %+v", res)
	}
	if st, _ := e.svc.Status(bg(), "acme"); st.State != Disabled {
		t.Fatalf("Validate changed the state to %s", st.State)
	}
	off := settingsFor("off-kv")
	res, err = e.svc.Validate(bg(), "acme", &off)
	must(t, err)
	if res.OK || res.Error == nil || res.Error.Code != errcode.KeyDisabled {
		t.Fatalf("Validate of a disabled key = %+v", res)
	}
	// Stored settings are validated when there is no body.
	_, err = e.svc.Configure(bg(), "acme", set, "")
	must(t, err)
	must(t, e.kv.SetEnabled("acme-kv", "k", "", false))
	res, err = e.svc.Validate(bg(), "acme", nil)
	must(t, err)
	if res.OK || res.Error.Code != errcode.KeyDisabled {
		t.Fatalf("Validate of stored settings = %+v", res)
	}
	if st, _ := e.svc.Status(bg(), "acme"); st.State != Active || st.ETag != `"1"` {
		t.Fatalf("Validate changed the stored status: %+v", st)
	}
}

func TestRecordKeyUse(t *testing.T) {
	e := newEnv(t, envOptions{inMemoryKeys: true})
	e.vault("acme-kv", 2048)
	_, err := e.svc.Configure(bg(), "acme", settingsFor("acme-kv"), "")
	must(t, err)

	cause := errcode.New(errcode.KeyAccessDenied, "denied")
	must(t, e.svc.RecordKeyUse(bg(), "acme", cause))
	st, _ := e.svc.Status(bg(), "acme")
	if st.State != Degraded || st.DegradedSince == nil || st.LastCheck.OK || st.LastCheck.Code != "KeyAccessDenied" || !strings.Contains(st.LastCheck.Message, appID) {
		t.Fatalf("after a failed use: %+v", st)
	}
	since := *st.DegradedSince
	must(t, e.svc.RecordKeyUse(bg(), "acme", errcode.New(errcode.KeyVaultUnreachable, "down")))
	st, _ = e.svc.Status(bg(), "acme")
	if !st.DegradedSince.Equal(since) || st.LastCheck.Code != "KeyVaultUnreachable" {
		t.Fatalf("a second failure moved degradedSince or kept the old cause: %+v", st)
	}
	must(t, e.svc.RecordKeyUse(bg(), "acme", nil))
	st, _ = e.svc.Status(bg(), "acme")
	if st.State != Active || st.DegradedSince != nil || !st.LastCheck.OK {
		t.Fatalf("after a good use: %+v", st)
	}
	warns := e.logs.Records("byok key state changed")
	if len(warns) != 2 || warns[0]["level"] != "WARN" || warns[0]["tenant"] != "acme" || warns[0]["code"] != "KeyAccessDenied" || warns[1]["to"] != "active" {
		t.Fatalf("transition logs = %v", warns)
	}
	// Disabled tenants are left alone.
	_, err = e.svc.Disable(bg(), "acme", "")
	must(t, err)
	must(t, e.svc.RecordKeyUse(bg(), "acme", cause))
	if st, _ := e.svc.Status(bg(), "acme"); st.State != Disabled {
		t.Fatalf("key use on a disabled tenant: %+v", st)
	}
}
