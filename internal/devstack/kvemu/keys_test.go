package kvemu_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	e := kvemu.TestStart(t)
	if err := e.CreateVault("kv1", tenantA, kvemu.AccessPolicy); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, "kv1", kvemu.AdminToken)

	created, err := c.CreateKey(ctx, "k1", azkeys.CreateKeyParameters{
		Kty: new(azkeys.KeyTypeRSAHSM), KeySize: new(int32(2048)),
		KeyOps: []*azkeys.KeyOperation{new(azkeys.KeyOperationWrapKey), new(azkeys.KeyOperationUnwrapKey)},
		Tags:   map[string]*string{"purpose": new("test")},
	}, nil)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	v1 := created.Key.KID.Version()
	if len(v1) != 32 || created.Key.KID.Name() != "k1" {
		t.Fatalf("kid %s: want name k1 and a 32-hex version", *created.Key.KID)
	}
	if want := fmt.Sprintf("https://kv1.localhost:%d/keys/k1/%s", e.Port(), v1); string(*created.Key.KID) != want {
		t.Fatalf("kid %s, want %s", *created.Key.KID, want)
	}
	if *created.Key.Kty != azkeys.KeyTypeRSAHSM || len(created.Key.N) != 256 || !bytes.Equal(created.Key.E, []byte{1, 0, 1}) {
		t.Fatalf("key: kty %s, len(n) %d, e %x", *created.Key.Kty, len(created.Key.N), created.Key.E)
	}
	if !*created.Attributes.Enabled || created.Attributes.Created == nil || *created.Tags["purpose"] != "test" {
		t.Fatalf("attributes/tags not returned: %+v %v", created.Attributes, created.Tags)
	}

	// Latest (GET /keys/k1/, trailing slash) and by version.
	latest, err := c.GetKey(ctx, "k1", "", nil)
	if err != nil || latest.Key.KID.Version() != v1 {
		t.Fatalf("GetKey latest: %v %v", err, latest.Key)
	}
	byVersion, err := c.GetKey(ctx, "k1", v1, nil)
	if err != nil || byVersion.Key.KID.Version() != v1 || len(byVersion.Key.KeyOps) != 2 {
		t.Fatalf("GetKey by version: %v", err)
	}

	// Update attributes of a version: disable, key_ops, nbf/exp.
	exp := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	upd, err := c.UpdateKey(ctx, "k1", v1, azkeys.UpdateKeyParameters{
		KeyAttributes: &azkeys.KeyAttributes{Enabled: new(false), Expires: &exp},
		KeyOps:        []*azkeys.KeyOperation{new(azkeys.KeyOperationUnwrapKey)},
	}, nil)
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	if *upd.Attributes.Enabled || !upd.Attributes.Expires.Equal(exp) || len(upd.Key.KeyOps) != 1 {
		t.Fatalf("UpdateKey result: enabled %v exp %v ops %d", *upd.Attributes.Enabled, upd.Attributes.Expires, len(upd.Key.KeyOps))
	}
	// GET of a disabled key succeeds and says so, like the service.
	got, err := c.GetKey(ctx, "k1", "", nil)
	if err != nil || *got.Attributes.Enabled {
		t.Fatalf("GetKey of disabled key: err %v, enabled %v", err, got.Attributes)
	}

	// Rotate: a new current version with the same type and ops; the old one stays.
	rot, err := c.RotateKey(ctx, "k1", nil)
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	v2 := rot.Key.KID.Version()
	if v2 == v1 || *rot.Key.Kty != azkeys.KeyTypeRSAHSM || len(rot.Key.KeyOps) != 1 || !*rot.Attributes.Enabled {
		t.Fatalf("rotated: version %s (old %s), kty %s, ops %d", v2, v1, *rot.Key.Kty, len(rot.Key.KeyOps))
	}
	if latest, _ := c.GetKey(ctx, "k1", "", nil); latest.Key.KID.Version() != v2 {
		t.Fatalf("latest after rotate is %s, want %s", latest.Key.KID.Version(), v2)
	}
	var versions []string
	pager := c.NewListKeyPropertiesVersionsPager("k1", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list versions: %v", err)
		}
		for _, it := range page.Value {
			versions = append(versions, it.KID.Version())
		}
	}
	if len(versions) != 2 {
		t.Fatalf("versions %v, want 2", versions)
	}
	var names []string
	kp := c.NewListKeyPropertiesPager(nil)
	for kp.More() {
		page, err := kp.NextPage(ctx)
		if err != nil {
			t.Fatalf("list keys: %v", err)
		}
		for _, it := range page.Value {
			names = append(names, it.KID.Name())
		}
	}
	if len(names) != 1 || names[0] != "k1" {
		t.Fatalf("keys %v", names)
	}

	// Delete: soft, then 404 KeyNotFound, 409 on re-create, recover, purge.
	del, err := c.DeleteKey(ctx, "k1", nil)
	if err != nil || del.RecoveryID == nil || del.DeletedDate == nil {
		t.Fatalf("DeleteKey: %v %+v", err, del)
	}
	_, err = c.GetKey(ctx, "k1", "", nil)
	wantServiceError(t, err, serviceError{404, "KeyNotFound", ""})
	_, err = c.CreateKey(ctx, "k1", azkeys.CreateKeyParameters{Kty: new(azkeys.KeyTypeRSA)}, nil)
	wantServiceError(t, err, serviceError{409, "Conflict", "ObjectIsDeletedButRecoverable"})
	if _, err := c.GetDeletedKey(ctx, "k1", nil); err != nil {
		t.Fatalf("GetDeletedKey: %v", err)
	}
	if rec, err := c.RecoverDeletedKey(ctx, "k1", nil); err != nil || rec.Key.KID.Version() != v2 {
		t.Fatalf("RecoverDeletedKey: %v", err)
	}
	if _, err := c.DeleteKey(ctx, "k1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PurgeDeletedKey(ctx, "k1", nil); err != nil {
		t.Fatalf("PurgeDeletedKey: %v", err)
	}
	if _, err := c.CreateKey(ctx, "k1", azkeys.CreateKeyParameters{Kty: new(azkeys.KeyTypeRSA)}, nil); err != nil {
		t.Fatalf("CreateKey after purge: %v", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	e := kvemu.TestStart(t)
	if err := e.CreateVault("kv1", tenantA, kvemu.RBAC); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, "kv1", kvemu.AdminToken)
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	for _, size := range []int{2048, 3072, 4096} {
		name := fmt.Sprintf("rsa%d", size)
		if _, err := e.CreateKey("kv1", name, "RSA", size, nil); err != nil {
			t.Fatal(err)
		}
		for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSA15} {
			t.Run(fmt.Sprintf("size=%d,alg=%s", size, alg), func(t *testing.T) {
				w, err := c.WrapKey(ctx, name, "", wrapParams(alg, dek), nil)
				if err != nil {
					t.Fatalf("WrapKey: %v", err)
				}
				if len(w.Result) != size/8 || w.KID.Name() != name || len(w.KID.Version()) != 32 {
					t.Fatalf("wrap: %d bytes, kid %s", len(w.Result), *w.KID)
				}
				u, err := c.UnwrapKey(ctx, name, w.KID.Version(), wrapParams(alg, w.Result), nil)
				if err != nil {
					t.Fatalf("UnwrapKey: %v", err)
				}
				if !bytes.Equal(u.Result, dek) || string(*u.KID) != string(*w.KID) {
					t.Fatalf("unwrap returned other bytes or kid %s", *u.KID)
				}
				// encrypt/decrypt are the same primitive under their own ops.
				enc, err := c.Encrypt(ctx, name, "", wrapParams(alg, dek), nil)
				if err != nil {
					t.Fatalf("Encrypt: %v", err)
				}
				dec, err := c.Decrypt(ctx, name, enc.KID.Version(), wrapParams(alg, enc.Result), nil)
				if err != nil || !bytes.Equal(dec.Result, dek) {
					t.Fatalf("Decrypt: %v", err)
				}
			})
		}
	}
}

func TestRotationKeepsOldVersionsUnwrappable(t *testing.T) {
	ctx := context.Background()
	e, c := vaultWithKey(t, kvemu.AccessPolicy)
	dek := []byte("0123456789abcdef0123456789abcdef")
	old, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek), nil)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := e.RotateKey("kv1", "k1")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(*cur.KID) != newKid || cur.KID.Version() == old.KID.Version() {
		t.Fatalf("wrap after rotate used %s, want %s", *cur.KID, newKid)
	}
	for _, w := range []azkeys.WrapKeyResponse{old, cur} {
		u, err := c.UnwrapKey(ctx, "k1", w.KID.Version(), wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, w.Result), nil)
		if err != nil || !bytes.Equal(u.Result, dek) {
			t.Fatalf("unwrap with %s: %v", w.KID.Version(), err)
		}
	}
	// Versions have distinct key material: the old ciphertext does not open with the new version.
	_, err = c.UnwrapKey(ctx, "k1", cur.KID.Version(), wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, old.Result), nil)
	wantServiceError(t, err, serviceError{400, "BadParameter", ""})
}
