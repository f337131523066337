// Package wraptest is the conformance suite for key wrappers: the Key Vault
// adapter (against the emulator) and the in-memory wrapper (keywrap/mem)
// run the same tests, so that a service tested on the in-memory wrapper
// meets the same answers, error codes included, as against Key Vault.
// Grants, sign-in, retries and transport are Key Vault's alone and stay in
// keywrap/keyvault's own tests.
package wraptest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Vault controls the keys behind a wrapper, in the emulator's terms
// (version "" = the current one; zero times unset a date).
type Vault interface {
	CreateKey(vaultName, name, kty string, size int, ops []string) (kid string, err error)
	RotateKey(vaultName, name string) (kid string, err error)
	SetTags(vaultName, name, version string, tags map[string]string) error
	SetEnabled(vaultName, name, version string, enabled bool) error
	SetKeyOps(vaultName, name, version string, ops []string) error
	SetExpiry(vaultName, name, version string, nbf, exp time.Time) error
	DeleteKey(vaultName, name string) error
}

// Harness is one wrapper under test and the control of its vault.
type Harness struct {
	Wrapper keywrap.Wrapper
	Vault   Vault
	// VaultURL gives the URL of a vault by name.
	VaultURL func(vaultName string) string
	// TenantID is the Entra tenant of VaultName, for customer refs.
	TenantID string
}

// VaultName is the vault open must create, empty and usable by the wrapper.
const VaultName = "conform-kv"

const keyName = "twinit-backup"

// Run runs the suite. open returns a fresh harness whose wrapper checks
// ownership with tag (none when tag is "").
func Run(t *testing.T, open func(t *testing.T, ownershipTag string) Harness) {
	tests := []struct {
		name string
		tag  string
		fn   func(t *testing.T, s *suite)
	}{
		{"RoundTrip", "", testRoundTrip},
		{"Rotation", "", testRotation},
		{"Classification", "", testClassification},
		{"ExpiredKeyStillUnwraps", "", testExpiredStillUnwraps},
		{"UnwrapNeedsExactVersion", "", testUnwrapNeedsExactVersion},
		{"BadRefs", "", testBadRefs},
		{"OwnershipTag", keywrap.DefaultOwnershipTag, testOwnership},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := open(t, tc.tag)
			kid, err := h.Vault.CreateKey(VaultName, keyName, "RSA", 2048, nil)
			must(t, err)
			tc.fn(t, &suite{Harness: h, kid: kid})
		})
	}
}

type suite struct {
	Harness
	kid string // current version of keyName at the start
	key string // the key a classification case works on
}

func (s *suite) ref(vaultName, key string) keywrap.Ref {
	return keywrap.Ref{Source: keywrap.Customer, VaultURL: s.VaultURL(vaultName), KeyName: key, TenantID: s.TenantID}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dataKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func version(kid string) string { return kid[strings.LastIndexByte(kid, '/')+1:] }

// wantCode asserts err's code and that its message names the vault.
func wantCode(t *testing.T, err error, code errcode.Code) *errcode.Error {
	t.Helper()
	e, ok := errcode.As(err)
	if !ok || e.Code != code {
		t.Fatalf("error = %v (code %s), want %s", err, errcode.CodeOf(err), code)
	}
	if !strings.Contains(e.Message, "-kv") {
		t.Fatalf("message %q does not name the vault", e.Message)
	}
	return e
}

func testRoundTrip(t *testing.T, s *suite) {
	ctx := t.Context()
	ref := s.ref(VaultName, keyName)
	dk := dataKey(t)
	w, err := s.Wrapper.Wrap(ctx, ref, dk)
	must(t, err)
	if w.KeyID != s.kid || w.Version != version(s.kid) || w.Algorithm != keywrap.Algorithm || bytes.Contains(w.WrappedKey, dk) || len(w.WrappedKey) != 256 {
		t.Fatalf("wrapped = %+v, want kid %s", w, s.kid)
	}
	got, err := s.Wrapper.Unwrap(ctx, ref, w)
	must(t, err)
	if !bytes.Equal(got, dk) {
		t.Fatal("unwrapped key differs")
	}
	info, err := s.Wrapper.Inspect(ctx, ref)
	must(t, err)
	if info.KeyID != s.kid || info.Version != version(s.kid) || info.KeyType != "RSA" || info.KeySize != 2048 || !info.Enabled || len(info.Operations) < 2 || info.OwnershipTag != "" {
		t.Fatalf("info = %+v", info)
	}
	// A disabled key is inspected like any other.
	must(t, s.Vault.SetEnabled(VaultName, keyName, "", false))
	info, err = s.Wrapper.Inspect(ctx, ref)
	must(t, err)
	if info.Enabled {
		t.Fatal("disabled key inspected as enabled")
	}
}

func testRotation(t *testing.T, s *suite) {
	ctx := t.Context()
	ref := s.ref(VaultName, keyName)
	k1 := dataKey(t)
	w1, err := s.Wrapper.Wrap(ctx, ref, k1)
	must(t, err)
	kid2, err := s.Vault.RotateKey(VaultName, keyName)
	must(t, err)
	k2 := dataKey(t)
	w2, err := s.Wrapper.Wrap(ctx, ref, k2)
	must(t, err)
	if w1.KeyID != s.kid || w2.KeyID != kid2 || w1.Version == w2.Version {
		t.Fatalf("versions: first %s, after rotation %s, want %s then %s", w1.KeyID, w2.KeyID, s.kid, kid2)
	}
	for _, c := range []struct {
		w  keywrap.Wrapped
		dk []byte
	}{{w1, k1}, {w2, k2}} {
		got, err := s.Wrapper.Unwrap(ctx, ref, c.w)
		must(t, err)
		if !bytes.Equal(got, c.dk) {
			t.Fatalf("unwrap with %s gave another key", c.w.KeyID)
		}
	}
	// A pinned version keeps wrapping with that version after rotation.
	pinned := ref
	pinned.Version = w1.Version
	w3, err := s.Wrapper.Wrap(ctx, pinned, dataKey(t))
	must(t, err)
	if w3.KeyID != s.kid {
		t.Fatalf("pinned wrap used %s, want %s", w3.KeyID, s.kid)
	}
	// Disabling the old version leaves the new one usable.
	must(t, s.Vault.SetEnabled(VaultName, keyName, w1.Version, false))
	_, err = s.Wrapper.Unwrap(ctx, ref, w1)
	wantCode(t, err, errcode.KeyDisabled)
	if _, err := s.Wrapper.Unwrap(ctx, ref, w2); err != nil {
		t.Fatal(err)
	}
}

func testClassification(t *testing.T, s *suite) {
	for i, tc := range []struct {
		name  string
		setup func(t *testing.T, s *suite) keywrap.Ref
		do    string // "wrap" (default), "unwrap" (wraps first, then applies late), "tamper"
		late  func(t *testing.T, s *suite)
		code  errcode.Code
	}{
		{name: "unknown vault", code: errcode.KeyVaultUnreachable,
			setup: func(t *testing.T, s *suite) keywrap.Ref { return s.ref("nosuch-kv", keyName) }},
		{name: "missing key", code: errcode.KeyNotFound,
			setup: func(t *testing.T, s *suite) keywrap.Ref { return s.ref(VaultName, "nosuch-key") }},
		{name: "deleted key", code: errcode.KeyNotFound,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				must(t, s.Vault.DeleteKey(VaultName, s.key))
				return s.ref(VaultName, s.key)
			}},
		{name: "missing version", code: errcode.KeyNotFound,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				r := s.ref(VaultName, s.key)
				r.Version = "0123456789abcdef0123456789abcdef"
				return r
			}},
		{name: "disabled key", code: errcode.KeyDisabled,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				must(t, s.Vault.SetEnabled(VaultName, s.key, "", false))
				return s.ref(VaultName, s.key)
			}},
		{name: "expired key", code: errcode.KeyDisabled,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				must(t, s.Vault.SetExpiry(VaultName, s.key, "", time.Time{}, time.Now().Add(-time.Hour)))
				return s.ref(VaultName, s.key)
			}},
		{name: "not yet valid key", code: errcode.KeyDisabled,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				must(t, s.Vault.SetExpiry(VaultName, s.key, "", time.Now().Add(time.Hour), time.Time{}))
				return s.ref(VaultName, s.key)
			}},
		{name: "disabled key fails unwrap", code: errcode.KeyDisabled, do: "unwrap",
			late: func(t *testing.T, s *suite) { must(t, s.Vault.SetEnabled(VaultName, s.key, "", false)) }},
		{name: "wrapKey not in key_ops", code: errcode.KeyOperationNotPermitted,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				must(t, s.Vault.SetKeyOps(VaultName, s.key, "", []string{"unwrapKey", "encrypt", "decrypt"}))
				return s.ref(VaultName, s.key)
			}},
		{name: "unwrapKey not in key_ops fails unwrap", code: errcode.KeyOperationNotPermitted, do: "unwrap",
			late: func(t *testing.T, s *suite) { must(t, s.Vault.SetKeyOps(VaultName, s.key, "", []string{"wrapKey"})) }},
		{name: "EC key", code: errcode.UnsupportedKeyType,
			setup: func(t *testing.T, s *suite) keywrap.Ref {
				_, err := s.Vault.CreateKey(VaultName, "ec-key", "EC", 256, nil)
				must(t, err)
				return s.ref(VaultName, "ec-key")
			}},
		{name: "altered wrapped key", code: errcode.IntegrityCheckFailed, do: "tamper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case gets its own key, so that one's changes (a
			// deletion) don't leak into the next.
			s := &suite{Harness: s.Harness, key: fmt.Sprintf("case-%d", i)}
			_, err := s.Vault.CreateKey(VaultName, s.key, "RSA", 2048, nil)
			must(t, err)
			ctx := t.Context()
			ref := s.ref(VaultName, s.key)
			if tc.setup != nil {
				ref = tc.setup(t, s)
			}
			switch tc.do {
			case "", "wrap":
				_, err = s.Wrapper.Wrap(ctx, ref, dataKey(t))
			case "unwrap", "tamper":
				w, werr := s.Wrapper.Wrap(ctx, ref, dataKey(t))
				must(t, werr)
				if tc.late != nil {
					tc.late(t, s)
				}
				if tc.do == "tamper" {
					w.WrappedKey[10] ^= 1
				}
				_, err = s.Wrapper.Unwrap(ctx, ref, w)
			}
			wantCode(t, err, tc.code)
		})
	}
}

func testExpiredStillUnwraps(t *testing.T, s *suite) {
	ref := s.ref(VaultName, keyName)
	dk := dataKey(t)
	w, err := s.Wrapper.Wrap(t.Context(), ref, dk)
	must(t, err)
	must(t, s.Vault.SetExpiry(VaultName, keyName, "", time.Time{}, time.Now().Add(-time.Minute)))
	got, err := s.Wrapper.Unwrap(t.Context(), ref, w)
	must(t, err)
	if !bytes.Equal(got, dk) {
		t.Fatal("unwrap differs")
	}
}

func testUnwrapNeedsExactVersion(t *testing.T, s *suite) {
	ctx := t.Context()
	ref := s.ref(VaultName, keyName)
	w, err := s.Wrapper.Wrap(ctx, ref, dataKey(t))
	must(t, err)
	noVersion := w
	noVersion.Version, noVersion.KeyID = "", ""
	if _, err := s.Wrapper.Unwrap(ctx, ref, noVersion); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap without version: %v", err)
	}
	elsewhere := w
	elsewhere.KeyID = strings.Replace(w.KeyID, VaultName, "evil-kv", 1)
	if _, err := s.Wrapper.Unwrap(ctx, ref, elsewhere); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap with a key id of another vault: %v", err)
	}
	pinned := ref
	pinned.Version = "0123456789abcdef0123456789abcdef"
	if _, err := s.Wrapper.Unwrap(ctx, pinned, w); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap with a ref pinned to another version: %v", err)
	}
	for _, alg := range []string{"RSA1_5", "RSA-OAEP", "", "rsa-oaep-256", "RSA-OAEP-256 "} {
		badAlg := w
		badAlg.Algorithm = alg
		if _, err := s.Wrapper.Unwrap(ctx, ref, badAlg); errcode.CodeOf(err) != errcode.UnsupportedKeyType {
			t.Fatalf("unwrap with %q: %v", alg, err)
		}
	}
	empty := w
	empty.WrappedKey = nil
	if _, err := s.Wrapper.Unwrap(ctx, ref, empty); errcode.CodeOf(err) != errcode.InvalidRequest {
		t.Fatalf("unwrap of nothing: %v", err)
	}
	onlyVersion := w
	onlyVersion.KeyID = ""
	if _, err := s.Wrapper.Unwrap(ctx, ref, onlyVersion); err != nil {
		t.Fatal(err)
	}
}

func testBadRefs(t *testing.T, s *suite) {
	good := s.ref(VaultName, keyName)
	for name, r := range map[string]keywrap.Ref{
		"path in vault url": {Source: keywrap.Customer, VaultURL: good.VaultURL + "x/", KeyName: keyName, TenantID: s.TenantID},
		"bad key name":      {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: "a/b", TenantID: s.TenantID},
		"bad version":       {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: keyName, Version: "x", TenantID: s.TenantID},
		"no tenant":         {Source: keywrap.Customer, VaultURL: good.VaultURL, KeyName: keyName},
		"no source":         {VaultURL: good.VaultURL, KeyName: keyName, TenantID: s.TenantID},
	} {
		if _, err := s.Wrapper.Wrap(t.Context(), r, dataKey(t)); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("wrap, %s: %v", name, err)
		}
		if _, err := s.Wrapper.Inspect(t.Context(), r); errcode.CodeOf(err) != errcode.InvalidRequest {
			t.Errorf("inspect, %s: %v", name, err)
		}
	}
	if _, err := s.Wrapper.Wrap(t.Context(), good, nil); errcode.CodeOf(err) != errcode.Internal {
		t.Errorf("wrap of no data key: %v", err)
	}
}

func testOwnership(t *testing.T, s *suite) {
	ctx := t.Context()
	ref := s.ref(VaultName, keyName)
	ref.Owner = "acme"

	_, err := s.Wrapper.Inspect(ctx, ref)
	msg := wantCode(t, err, errcode.KeyOwnershipNotProven).Message
	if !strings.Contains(msg, `"twinit-tenants"`) || !strings.Contains(msg, `"acme"`) {
		t.Fatalf("message %q does not name the tag and value to set", msg)
	}
	_, err = s.Wrapper.Wrap(ctx, ref, dataKey(t))
	wantCode(t, err, errcode.KeyOwnershipNotProven)
	// A disabled key of someone else answers the same.
	must(t, s.Vault.SetEnabled(VaultName, keyName, "", false))
	_, err = s.Wrapper.Inspect(ctx, ref)
	wantCode(t, err, errcode.KeyOwnershipNotProven)
	must(t, s.Vault.SetEnabled(VaultName, keyName, "", true))

	must(t, s.Vault.SetTags(VaultName, keyName, "", map[string]string{"twinit-tenants": "beta, acme"}))
	info, err := s.Wrapper.Inspect(ctx, ref)
	must(t, err)
	if info.Tags["twinit-tenants"] != "beta, acme" || info.OwnershipTag != keywrap.DefaultOwnershipTag {
		t.Fatalf("tags = %v, ownership tag %q", info.Tags, info.OwnershipTag)
	}
	w, err := s.Wrapper.Wrap(ctx, ref, dataKey(t))
	must(t, err)
	_, err = s.Wrapper.Unwrap(ctx, ref, w)
	must(t, err)

	// Taking the tenant off the tag revokes unwrap like disabling the key.
	must(t, s.Vault.SetTags(VaultName, keyName, "", map[string]string{"twinit-tenants": "beta"}))
	_, err = s.Wrapper.Unwrap(ctx, ref, w)
	wantCode(t, err, errcode.KeyOwnershipNotProven)

	// A customer reference that names no tenant fails closed.
	ref.Owner = ""
	if _, err = s.Wrapper.Inspect(ctx, ref); errcode.CodeOf(err) != errcode.Internal {
		t.Fatalf("inspect without owner: %v", err)
	}
}
