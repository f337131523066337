package keyvault

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/testing/fatal"
)

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	tenant      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenant = "0b9a0d7e-6c1e-4d77-9a57-1b2c3d4e5f60"
	vault       = "contoso-kv"
	keyName     = "twinit-backup"
	maxRetries  = 2
)

// env is one emulator with vault contoso-kv (tenant, access policies), the
// BYOK app granted get/wrapKey/unwrapKey, key twinit-backup (RSA 2048), and a
// Wrapper wired exactly as production is, with emulator credentials.
type env struct {
	emu  *kvemu.Emulator
	w    *Wrapper
	kid  string // current version of twinit-backup
	logs *bytes.Buffer
}

func setup(t *testing.T, change ...func(*Options)) *env {
	t.Helper()
	emu := kvemu.TestStart(t)
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	o := Options{
		Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM(),
		MaxRetries: maxRetries, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 2 * time.Second, TryTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range change {
		f(&o)
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	must(t, emu.CreateVault(vault, tenant, kvemu.AccessPolicy))
	must(t, emu.Grant(vault, kvemu.CustomerToken(appID, tenant), "get", "wrapKey", "unwrapKey"))
	kid, err := emu.CreateKey(vault, keyName, "RSA", 2048, nil)
	must(t, err)
	return &env{emu: emu, w: w, kid: kid, logs: logs}
}

// must keeps the call sites short; the helper itself is shared.
var must = fatal.IfErr

func (e *env) ref(t *testing.T, vaultName, key string) keywrap.Ref {
	t.Helper()
	u, err := keywrap.VaultURL(e.emu.URLTemplate(), vaultName)
	must(t, err)
	return keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: key, TenantID: tenant}
}

func dataKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func version(kid string) string { return kid[strings.LastIndexByte(kid, '/')+1:] }

// wantCode asserts err's contract code and that its message is ours: it
// names the key or vault and holds no Key Vault response text.
func wantCode(t *testing.T, err error, code errcode.Code) *errcode.Error {
	t.Helper()
	e, ok := errcode.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error = %v (code %s), want %s", err, errcode.CodeOf(err), code)
	}
	for _, leak := range []string{"AKV", "not allowed on a disabled key", "does not have keys", "Caller is not authorized",
		"Request was not processed", "permitted on this key", "innererror", "{"} {
		if strings.Contains(e.Message, leak) {
			t.Fatalf("message %q contains response text %q", e.Message, leak)
		}
	}
	// Every vault in these tests is named "*-kv": the message must name it.
	if !strings.Contains(e.Message, "-kv") {
		t.Fatalf("message %q does not name the vault", e.Message)
	}
	return e
}

func TestWrapUnwrapRoundTrip(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ref := e.ref(t, vault, keyName)
	dk := dataKey(t)
	w, err := e.w.Wrap(ctx, ref, dk)
	must(t, err)
	if w.KeyID != e.kid || w.Version != version(e.kid) || w.Algorithm != "RSA-OAEP-256" || bytes.Contains(w.WrappedKey, dk) || len(w.WrappedKey) != 256 {
		t.Fatalf("wrapped = %+v, want kid %s", w, e.kid)
	}
	got, err := e.w.Unwrap(ctx, ref, w)
	must(t, err)
	if !bytes.Equal(got, dk) {
		t.Fatal("unwrapped key differs")
	}
	// One GET and one wrapKey per wrap, one unwrapKey per unwrap.
	if g, wk, uk := e.emu.CountOps(vault, "get"), e.emu.CountOps(vault, "wrapKey"), e.emu.CountOps(vault, "unwrapKey"); g != 1 || wk != 1 || uk != 1 {
		t.Fatalf("ops get=%d wrapKey=%d unwrapKey=%d, want 1 each", g, wk, uk)
	}
	info, err := e.w.Inspect(ctx, ref)
	must(t, err)
	if info.KeyID != e.kid || info.KeyType != "RSA" || info.KeySize != 2048 || !info.Enabled || len(info.Operations) < 2 {
		t.Fatalf("info = %+v", info)
	}
	if bytes.Contains(e.logs.Bytes(), dk) || bytes.Contains(e.logs.Bytes(), got) {
		t.Fatal("data key logged")
	}
}

func TestPlatformKey(t *testing.T) {
	e := setup(t)
	must(t, e.emu.CreateVault("platform-kv", "99999999-9999-4999-8999-999999999999", kvemu.RBAC))
	kid, err := e.emu.CreateKey("platform-kv", "platform-key", "RSA-HSM", 3072, nil)
	must(t, err)
	u, _, _, err := keywrap.ParseKeyID(kid)
	must(t, err)
	ref := keywrap.Ref{Source: keywrap.Platform, VaultURL: u, KeyName: "platform-key"}
	_, err = e.w.Wrap(context.Background(), ref, dataKey(t))
	wantCode(t, err, errcode.KeyAccessDenied) // not granted yet: RBAC
	must(t, e.emu.Grant("platform-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"))
	w, err := e.w.Wrap(context.Background(), ref, dataKey(t))
	must(t, err)
	if w.KeyID != kid {
		t.Fatalf("kid = %s, want %s", w.KeyID, kid)
	}
	if _, err := e.w.Unwrap(context.Background(), ref, w); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedGrantFailsNextUnwrap(t *testing.T) {
	for _, model := range []kvemu.PermissionModel{kvemu.AccessPolicy, kvemu.RBAC} {
		t.Run(map[kvemu.PermissionModel]string{kvemu.AccessPolicy: "accessPolicy", kvemu.RBAC: "rbac"}[model], func(t *testing.T) {
			e := setup(t)
			must(t, e.emu.CreateVault("rbac-kv", tenant, model))
			must(t, e.emu.Grant("rbac-kv", kvemu.CustomerToken(appID, tenant), "get", "wrapKey", "unwrapKey"))
			_, err := e.emu.CreateKey("rbac-kv", keyName, "RSA", 2048, nil)
			must(t, err)
			ctx := context.Background()
			ref := e.ref(t, "rbac-kv", keyName)
			w, err := e.w.Wrap(ctx, ref, dataKey(t))
			must(t, err)
			_, err = e.w.Unwrap(ctx, ref, w)
			must(t, err)
			must(t, e.emu.Revoke("rbac-kv", kvemu.CustomerToken(appID, tenant)))
			_, err = e.w.Unwrap(ctx, ref, w)
			m := wantCode(t, err, errcode.KeyAccessDenied)
			if !strings.Contains(m.Message, appID) || !strings.Contains(m.Message, "wrapKey and unwrapKey") || !strings.Contains(m.Message, "rbac-kv") {
				t.Fatalf("message does not say whom to grant what: %q", m.Message)
			}
		})
	}
}

func TestClassification(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *env) keywrap.Ref
		do    string // "wrap" (default), "unwrap" (wraps first, then applies late), "inspect"
		late  func(t *testing.T, e *env)
		code  errcode.Code
		check func(t *testing.T, e *env)
	}{
		{name: "unknown vault is unreachable", code: errcode.KeyVaultUnreachable,
			setup: func(t *testing.T, e *env) keywrap.Ref { return e.ref(t, "nosuch-kv", keyName) },
			check: func(t *testing.T, e *env) {
				if n := countVault(e, "nosuch-kv"); n < 1 || n > maxRetries+1 {
					t.Fatalf("%d attempts, want 1..%d", n, maxRetries+1)
				}
			}},
		{name: "down vault is unreachable after bounded tries", code: errcode.KeyVaultUnreachable,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				e.emu.SetFault(vault, kvemu.Fault{Down: true})
				return e.ref(t, vault, keyName)
			},
			check: func(t *testing.T, e *env) {
				if n := countVault(e, vault); n != maxRetries+1 {
					t.Fatalf("%d attempts, want %d", n, maxRetries+1)
				}
			}},
		{name: "vault of another tenant is auth failure", code: errcode.KeyVaultAuthFailed,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.CreateVault("other-kv", otherTenant, kvemu.AccessPolicy))
				return e.ref(t, "other-kv", keyName)
			},
			check: func(t *testing.T, e *env) {}},
		{name: "missing key", code: errcode.KeyNotFound,
			setup: func(t *testing.T, e *env) keywrap.Ref { return e.ref(t, vault, "nosuch-key") }},
		{name: "deleted key", code: errcode.KeyNotFound,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.DeleteKey(vault, keyName))
				return e.ref(t, vault, keyName)
			}},
		{name: "missing version", code: errcode.KeyNotFound,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				r := e.ref(t, vault, keyName)
				r.Version = "0123456789abcdef0123456789abcdef"
				return r
			}},
		{name: "disabled key is refused before wrapKey", code: errcode.KeyDisabled,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.SetEnabled(vault, keyName, "", false))
				return e.ref(t, vault, keyName)
			},
			check: noWrapCall},
		{name: "expired key is refused before wrapKey", code: errcode.KeyDisabled,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.SetExpiry(vault, keyName, "", time.Time{}, time.Now().Add(-time.Hour)))
				return e.ref(t, vault, keyName)
			},
			check: noWrapCall},
		{name: "not yet valid key is refused before wrapKey", code: errcode.KeyDisabled,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.SetExpiry(vault, keyName, "", time.Now().Add(time.Hour), time.Time{}))
				return e.ref(t, vault, keyName)
			},
			check: noWrapCall},
		{name: "disabled key fails unwrap at the vault", code: errcode.KeyDisabled, do: "unwrap",
			late: func(t *testing.T, e *env) { must(t, e.emu.SetEnabled(vault, keyName, "", false)) }},
		{name: "no grant is access denied (access policy)", code: errcode.KeyAccessDenied,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.Revoke(vault, kvemu.CustomerToken(appID, tenant)))
				must(t, e.emu.Grant(vault, kvemu.CustomerToken(appID, tenant), "get"))
				return e.ref(t, vault, keyName)
			}},
		{name: "no get grant is access denied (rbac)", code: errcode.KeyAccessDenied, do: "inspect",
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.CreateVault("rbac-kv", tenant, kvemu.RBAC))
				_, err := e.emu.CreateKey("rbac-kv", keyName, "RSA", 2048, nil)
				must(t, err)
				return e.ref(t, "rbac-kv", keyName)
			}},
		{name: "wrapKey not in key_ops is refused before wrapKey", code: errcode.KeyOperationNotPermitted,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				must(t, e.emu.SetKeyOps(vault, keyName, "", []string{"unwrapKey", "encrypt", "decrypt"}))
				return e.ref(t, vault, keyName)
			},
			check: noWrapCall},
		{name: "unwrapKey not in key_ops fails unwrap at the vault", code: errcode.KeyOperationNotPermitted, do: "unwrap",
			late: func(t *testing.T, e *env) { must(t, e.emu.SetKeyOps(vault, keyName, "", []string{"wrapKey"})) }},
		{name: "EC key is unsupported", code: errcode.UnsupportedKeyType,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				_, err := e.emu.CreateKey(vault, "ec-key", "EC", 256, nil)
				must(t, err)
				return e.ref(t, vault, "ec-key")
			},
			check: noWrapCall},
		{name: "throttled after retries", code: errcode.Throttled,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				e.emu.SetFault(vault, kvemu.Fault{Throttle: -1})
				return e.ref(t, vault, keyName)
			},
			check: func(t *testing.T, e *env) {
				if n := e.emu.CountOps(vault, "get"); n != maxRetries+1 {
					t.Fatalf("%d GET attempts, want %d", n, maxRetries+1)
				}
			}},
		{name: "server errors after retries are unreachable", code: errcode.KeyVaultUnreachable,
			setup: func(t *testing.T, e *env) keywrap.Ref {
				e.emu.SetFault(vault, kvemu.Fault{ServerError: -1, ServerCode: 503})
				return e.ref(t, vault, keyName)
			}},
		{name: "altered wrapped key fails integrity", code: errcode.IntegrityCheckFailed, do: "tamper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			ref := e.ref(t, vault, keyName)
			if tc.setup != nil {
				ref = tc.setup(t, e)
			}
			var err error
			switch tc.do {
			case "", "wrap":
				_, err = e.w.Wrap(ctx, ref, dataKey(t))
			case "inspect":
				_, err = e.w.Inspect(ctx, ref)
			case "unwrap", "tamper":
				w, werr := e.w.Wrap(ctx, ref, dataKey(t))
				must(t, werr)
				if tc.late != nil {
					tc.late(t, e)
				}
				if tc.do == "tamper" {
					w.WrappedKey[10] ^= 1
				}
				_, err = e.w.Unwrap(ctx, ref, w)
			}
			wantCode(t, err, tc.code)
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

func noWrapCall(t *testing.T, e *env) {
	t.Helper()
	if n := e.emu.CountOps("", "wrapKey"); n != 0 {
		t.Fatalf("wrapKey was called %d times for an unusable key", n)
	}
}

func countVault(e *env, name string) int {
	n := 0
	for _, r := range e.emu.Requests() {
		if r.Vault == name {
			n++
		}
	}
	return n
}

func TestThrottledThenSuccessIsRetriedTransparently(t *testing.T) {
	for _, retryAfter := range []bool{false, true} {
		t.Run(map[bool]string{false: "backoff", true: "retry-after"}[retryAfter], func(t *testing.T) {
			e := setup(t)
			e.emu.SetFault(vault, kvemu.Fault{Throttle: 2, RetryAfter: retryAfter})
			ref := e.ref(t, vault, keyName)
			w, err := e.w.Wrap(context.Background(), ref, dataKey(t))
			must(t, err)
			if w.KeyID != e.kid {
				t.Fatalf("kid %s", w.KeyID)
			}
			throttled := 0
			for _, r := range e.emu.Requests() {
				if r.Status == 429 {
					throttled++
				}
			}
			if throttled != 2 {
				t.Fatalf("%d throttled answers, want 2", throttled)
			}
		})
	}
}

func TestServerErrorThenSuccess(t *testing.T) {
	e := setup(t)
	e.emu.SetFault(vault, kvemu.Fault{ServerError: 1, ServerCode: 500})
	if _, err := e.w.Wrap(context.Background(), e.ref(t, vault, keyName), dataKey(t)); err != nil {
		t.Fatal(err)
	}
}

// TestVaultTimeNow proves Options.Now is the clock of the pre-wrap check:
// with our clock before the key's expiry the wrap is attempted and the
// vault's own 403 KeyExpired is classified KeyDisabled.
func TestVaultTimeNow(t *testing.T) {
	exp := time.Now().Add(-time.Hour)
	e := setup(t, func(o *Options) { o.Now = func() time.Time { return exp.Add(-time.Hour) } })
	must(t, e.emu.SetExpiry(vault, keyName, "", time.Time{}, exp))
	_, err := e.w.Wrap(context.Background(), e.ref(t, vault, keyName), dataKey(t))
	wantCode(t, err, errcode.KeyDisabled)
	if n := e.emu.CountOps(vault, "wrapKey"); n != 1 {
		t.Fatalf("wrapKey calls = %d, want 1 (refused by the vault)", n)
	}
}

func TestWithoutCATLSFailsAsUnreachable(t *testing.T) {
	e := setup(t, func(o *Options) { o.CAPEM = nil })
	_, err := e.w.Wrap(context.Background(), e.ref(t, vault, keyName), dataKey(t))
	wantCode(t, err, errcode.KeyVaultUnreachable)
	if _, err := New(Options{Credentials: nopCreds{}, CAPEM: []byte("not pem")}); err == nil {
		t.Fatal("New accepted a CA file without certificates")
	}
}

func TestTryTimeoutBoundsSlowVault(t *testing.T) {
	e := setup(t, func(o *Options) { o.TryTimeout = 200 * time.Millisecond; o.MaxRetries = 1 })
	e.emu.SetFault(vault, kvemu.Fault{Latency: 3 * time.Second})
	_, err := e.w.Inspect(context.Background(), e.ref(t, vault, keyName))
	wantCode(t, err, errcode.KeyVaultUnreachable)
	if n := countVault(e, vault); n > 2 {
		t.Fatalf("%d attempts, want at most 2", n)
	}
}

func TestUnwrapNeedsExactVersion(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ref := e.ref(t, vault, keyName)
	w, err := e.w.Wrap(ctx, ref, dataKey(t))
	must(t, err)
	noVersion := w
	noVersion.Version, noVersion.KeyID = "", ""
	if _, err := e.w.Unwrap(ctx, ref, noVersion); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap without version: %v", err)
	}
	elsewhere := w
	elsewhere.KeyID = strings.Replace(w.KeyID, vault, "evil-kv", 1)
	if _, err := e.w.Unwrap(ctx, ref, elsewhere); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap with a key id of another vault: %v", err)
	}
	// Only RSA-OAEP-256: not RSA1_5 (a padding oracle), not OAEP with
	// SHA-1, not an absent algorithm, and none of them reaches the vault.
	for _, alg := range []string{"RSA1_5", "RSA-OAEP", "", "rsa-oaep-256", "RSA-OAEP-256 "} {
		badAlg := w
		badAlg.Algorithm = alg
		if _, err := e.w.Unwrap(ctx, ref, badAlg); errcode.CodeOf(err) != errcode.UnsupportedKeyType {
			t.Fatalf("unwrap with %q: %v", alg, err)
		}
	}
	// Version only (no key id) is enough.
	onlyVersion := w
	onlyVersion.KeyID = ""
	if _, err := e.w.Unwrap(ctx, ref, onlyVersion); err != nil {
		t.Fatal(err)
	}
	if n := e.emu.CountOps(vault, "unwrapKey"); n != 1 {
		t.Fatalf("unwrapKey calls = %d, want 1 (refused ones must not reach the vault)", n)
	}
}

func TestBadRefsNeverReachTheNetwork(t *testing.T) {
	e := setup(t)
	good := e.ref(t, vault, keyName)
	for name, r := range map[string]keywrap.Ref{
		"path in vault url": {Source: keywrap.Customer, VaultURL: good.VaultURL + "x/", KeyName: keyName, TenantID: tenant},
		"bad key name":      {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: "a/b", TenantID: tenant},
		"bad version":       {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: keyName, Version: "x", TenantID: tenant},
		"no tenant":         {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: keyName},
		"no source":         {VaultURL: good.VaultURL, KeyName: keyName, TenantID: tenant},
	} {
		if _, err := e.w.Wrap(context.Background(), r, dataKey(t)); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(e.emu.Requests()); n != 0 {
		t.Fatalf("%d requests reached the emulator", n)
	}
}

func TestClientsAreCachedPerVaultAndTenant(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ref := e.ref(t, vault, keyName)
	for range 3 {
		_, err := e.w.Inspect(ctx, ref)
		must(t, err)
	}
	// One challenge for the cached client; a new client would probe again.
	if n := e.emu.CountOps(vault, "challenge"); n != 1 {
		t.Fatalf("challenges = %d, want 1", n)
	}
	if e.w.clients.Len() != 1 {
		t.Fatalf("clients = %d", e.w.clients.Len())
	}
}

func TestCanceledContextIsNotAKeyCause(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.w.Wrap(ctx, e.ref(t, vault, keyName), dataKey(t))
	if err == nil || !errorsIsCanceled(err) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := errcode.As(err); ok {
		t.Fatalf("cancellation classified as %s", errcode.CodeOf(err))
	}
}

// failingEntra answers every sign-in request with an Entra error.
type failingEntra struct{}

func (failingEntra) Do(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}}, Request: req,
		Body: io.NopCloser(strings.NewReader(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`))}, nil
}

// TestSignInFailureIsKeyVaultAuthFailed: the vault's challenge sends the
// real credential to Entra, which refuses; no request reaches the vault
// with a token.
func TestSignInFailureIsKeyVaultAuthFailed(t *testing.T) {
	emu := kvemu.TestStart(t)
	creds, err := credential.New(credential.Options{Mode: credential.Secret, AppClientID: appID, ClientSecret: "wrong",
		ClientOptions: azcore.ClientOptions{Transport: failingEntra{}, Retry: policy.RetryOptions{MaxRetries: -1}}})
	must(t, err)
	w, err := New(Options{Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM(), MaxRetries: 1, RetryDelay: 10 * time.Millisecond})
	must(t, err)
	must(t, emu.CreateVault(vault, tenant, kvemu.AccessPolicy))
	u, err := keywrap.VaultURL(emu.URLTemplate(), vault)
	must(t, err)
	_, err = w.Inspect(context.Background(), keywrap.Ref{Source: keywrap.Customer, VaultURL: u, KeyName: keyName, TenantID: tenant})
	e := wantCode(t, err, errcode.KeyVaultAuthFailed)
	if strings.Contains(e.Message, "AADSTS") || !strings.Contains(e.Message, tenant) {
		t.Fatalf("message %q", e.Message)
	}
	for _, r := range emu.Requests() {
		if r.Caller != "" {
			t.Fatalf("a request reached the vault with a token: %+v", r)
		}
	}
}

// The ownership tag (API.md §5) is read on every use of a customer key:
// validation's Inspect, the GET before each wrap, and a GET of the exact
// version before each unwrap. A key not tagged for the tenant answers
// KeyOwnershipNotProven and nothing else about it, even when it is disabled.
func TestOwnershipTagIsCheckedOnEveryRead(t *testing.T) {
	e := setup(t, func(o *Options) { o.OwnershipTag = keywrap.DefaultOwnershipTag })
	ctx := context.Background()
	ref := e.ref(t, vault, keyName)
	ref.Owner = "acme"

	_, err := e.w.Inspect(ctx, ref)
	msg := wantCode(t, err, errcode.KeyOwnershipNotProven).Message
	if !strings.Contains(msg, `"twinit-tenants"`) || !strings.Contains(msg, `"acme"`) {
		t.Fatalf("message %q does not name the tag and value to set", msg)
	}
	_, err = e.w.Wrap(ctx, ref, dataKey(t))
	wantCode(t, err, errcode.KeyOwnershipNotProven)
	if n := e.emu.CountOps(vault, "wrapKey"); n != 0 {
		t.Fatalf("wrapKey called %d times for a key not tagged for the tenant", n)
	}
	// A disabled key of someone else answers the same: its state is not
	// revealed.
	must(t, e.emu.SetEnabled(vault, keyName, "", false))
	_, err = e.w.Inspect(ctx, ref)
	wantCode(t, err, errcode.KeyOwnershipNotProven)
	must(t, e.emu.SetEnabled(vault, keyName, "", true))

	must(t, e.emu.SetTags(vault, keyName, "", map[string]string{"twinit-tenants": "beta, acme"}))
	info, err := e.w.Inspect(ctx, ref)
	must(t, err)
	if info.Tags["twinit-tenants"] != "beta, acme" {
		t.Fatalf("tags = %v", info.Tags)
	}
	w, err := e.w.Wrap(ctx, ref, dataKey(t))
	must(t, err)
	_, err = e.w.Unwrap(ctx, ref, w)
	must(t, err)

	// Taking the tenant off the tag revokes unwrap like disabling the key.
	must(t, e.emu.SetTags(vault, keyName, "", map[string]string{"twinit-tenants": "beta"}))
	before := e.emu.CountOps(vault, "unwrapKey")
	_, err = e.w.Unwrap(ctx, ref, w)
	wantCode(t, err, errcode.KeyOwnershipNotProven)
	if n := e.emu.CountOps(vault, "unwrapKey"); n != before {
		t.Fatal("unwrapKey called for a key no longer tagged for the tenant")
	}

	// A customer reference that names no tenant fails closed.
	ref.Owner = ""
	_, err = e.w.Inspect(ctx, ref)
	if errcode.CodeOf(err) != errcode.Internal {
		t.Fatalf("inspect without owner: %v", err)
	}
}

// With the tag setting empty the check is off (API.md §5).
func TestOwnershipCheckOff(t *testing.T) {
	e := setup(t)
	ref := e.ref(t, vault, keyName)
	w, err := e.w.Wrap(context.Background(), ref, dataKey(t))
	must(t, err)
	_, err = e.w.Unwrap(context.Background(), ref, w)
	must(t, err)
	if n := e.emu.CountOps(vault, "get"); n != 1 {
		t.Fatalf("gets = %d, want 1 (none before unwrap without the check)", n)
	}
}

type staticCred struct{}

func (staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type staticCreds struct{}

func (staticCreds) For(keywrap.Ref) (azcore.TokenCredential, error) { return staticCred{}, nil }

// The client cache is bounded: 10,000 distinct vault/tenant pairs leave the
// heap (measured after GC) where the first maxClients left it.
func TestClientCacheMemoryIsFlat(t *testing.T) {
	const maxClients = 64
	w, err := New(Options{Credentials: staticCreds{}, MaxClients: maxClients})
	must(t, err)
	use := func(from, to int) {
		for i := from; i < to; i++ {
			ref := keywrap.Ref{Source: keywrap.Customer, VaultURL: fmt.Sprintf("https://v%06d.vault.azure.net/", i), KeyName: "k",
				TenantID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)}
			if _, err := w.client(ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	use(0, 2*maxClients)
	before := heapAfterGC()
	use(2*maxClients, 2*maxClients+10_000)
	after := heapAfterGC()
	growth := int64(after) - int64(before)
	t.Logf("heap before %d B, after 10,000 more pairs %d B (growth %d B)", before, after, growth)
	if growth > 1<<20 {
		t.Fatalf("heap grew by %d B over 10,000 vault/tenant pairs", growth)
	}
	if n := w.clients.Len(); n != maxClients {
		t.Fatalf("cached clients = %d, want %d", n, maxClients)
	}
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
