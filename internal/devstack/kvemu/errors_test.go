package kvemu_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

var dek32 = []byte("0123456789abcdef0123456789abcdef")

// TestKeyErrors produces every key-level error through the real client and
// checks status, error.code and innererror.code.
func TestKeyErrors(t *testing.T) {
	ctx := context.Background()
	e, c := vaultWithKey(t, kvemu.AccessPolicy)
	wrapped, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := wrapped.KID.Version()
	wrap := func() error {
		_, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
		return err
	}
	unwrap := func() error {
		_, err := c.UnwrapKey(ctx, "k1", v1, wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, wrapped.Result), nil)
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("missing key", func(t *testing.T) {
		_, err := c.GetKey(ctx, "nope", "", nil)
		wantServiceError(t, err, serviceError{404, "KeyNotFound", ""})
		_, err = c.WrapKey(ctx, "nope", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
		wantServiceError(t, err, serviceError{404, "KeyNotFound", ""})
	})
	t.Run("missing version", func(t *testing.T) {
		_, err := c.GetKey(ctx, "k1", "0123456789abcdef0123456789abcdef", nil)
		wantServiceError(t, err, serviceError{404, "KeyNotFound", ""})
	})
	t.Run("disabled", func(t *testing.T) {
		must(e.SetEnabled("kv1", "k1", "", false))
		defer func() { must(e.SetEnabled("kv1", "k1", "", true)) }()
		wantServiceError(t, wrap(), serviceError{403, "Forbidden", "KeyDisabled"})
		wantServiceError(t, unwrap(), serviceError{403, "Forbidden", "KeyDisabled"})
		if _, err := c.GetKey(ctx, "k1", "", nil); err != nil {
			t.Fatalf("GET of a disabled key must succeed: %v", err)
		}
	})
	t.Run("op not in key_ops", func(t *testing.T) {
		must(e.SetKeyOps("kv1", "k1", "", []string{"wrapKey"}))
		defer func() { must(e.SetKeyOps("kv1", "k1", "", []string{"wrapKey", "unwrapKey"})) }()
		must(wrap())
		wantServiceError(t, unwrap(), serviceError{403, "Forbidden", "KeyOperationForbidden"})
	})
	t.Run("expired", func(t *testing.T) {
		must(e.SetExpiry("kv1", "k1", "", time.Time{}, time.Now().Add(-time.Minute)))
		defer func() { must(e.SetExpiry("kv1", "k1", "", time.Time{}, time.Time{})) }()
		wantServiceError(t, wrap(), serviceError{403, "Forbidden", "KeyExpired"})
		must(unwrap()) // expired keys still unwrap, like the service
	})
	t.Run("not yet valid", func(t *testing.T) {
		must(e.SetExpiry("kv1", "k1", "", time.Now().Add(time.Hour), time.Time{}))
		defer func() { must(e.SetExpiry("kv1", "k1", "", time.Time{}, time.Time{})) }()
		wantServiceError(t, wrap(), serviceError{403, "Forbidden", "KeyNotYetValid"})
		must(unwrap())
	})
	t.Run("bad ciphertext", func(t *testing.T) {
		_, err := c.UnwrapKey(ctx, "k1", v1, wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, []byte("garbage")), nil)
		wantServiceError(t, err, serviceError{400, "BadParameter", ""})
	})
	t.Run("bad algorithm", func(t *testing.T) {
		_, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmA256KW, dek32), nil)
		wantServiceError(t, err, serviceError{400, "BadParameter", ""})
	})
	t.Run("symmetric key refused", func(t *testing.T) {
		_, err := c.CreateKey(ctx, "sym", azkeys.CreateKeyParameters{Kty: new(azkeys.KeyTypeOctHSM), KeySize: new(int32(256))}, nil)
		wantServiceError(t, err, serviceError{400, "BadParameter", ""})
		if _, err := e.CreateKey("kv1", "sym", "oct-HSM", 256, nil); err == nil {
			t.Fatal("in-process CreateKey accepted oct-HSM")
		}
	})
	t.Run("bad key size", func(t *testing.T) {
		_, err := c.CreateKey(ctx, "small", azkeys.CreateKeyParameters{Kty: new(azkeys.KeyTypeRSA), KeySize: new(int32(1024))}, nil)
		wantServiceError(t, err, serviceError{400, "BadParameter", ""})
	})
	t.Run("EC key cannot wrap", func(t *testing.T) {
		ec, err := c.CreateKey(ctx, "ec1", azkeys.CreateKeyParameters{Kty: new(azkeys.KeyTypeEC), Curve: new(azkeys.CurveNameP256)}, nil)
		if err != nil {
			t.Fatalf("create EC: %v", err)
		}
		if *ec.Key.Kty != azkeys.KeyTypeEC || len(ec.Key.X) != 32 || len(ec.Key.Y) != 32 {
			t.Fatalf("EC key: %s x %d y %d", *ec.Key.Kty, len(ec.Key.X), len(ec.Key.Y))
		}
		_, err = c.WrapKey(ctx, "ec1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
		wantServiceError(t, err, serviceError{403, "Forbidden", "KeyOperationForbidden"})
	})
	t.Run("unknown api-version", func(t *testing.T) {
		old := newClientOpts(t, e, "kv1", staticCred{token: kvemu.AdminToken}, policy.RetryOptions{MaxRetries: -1}, "7.3-preview")
		_, err := old.GetKey(ctx, "k1", "", nil)
		wantServiceError(t, err, serviceError{400, "BadParameter", ""})
		v75 := newClientOpts(t, e, "kv1", staticCred{token: kvemu.AdminToken}, policy.RetryOptions{MaxRetries: -1}, "7.5")
		if _, err := v75.GetKey(ctx, "k1", "", nil); err != nil {
			t.Fatalf("api-version 7.5 refused: %v", err)
		}
	})
}
