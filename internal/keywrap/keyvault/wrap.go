package keyvault

import (
	"context"
	"math/big"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/errcode"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// Operations, as named in logs, audit rows and classification.
const (
	opInspect = "get"
	opWrap    = keywrap.OpWrapKey
	opUnwrap  = keywrap.OpUnwrapKey
)

// Inspect reads the key version in ref (or the current one) with one GET.
// A disabled key is read like any other: Key Vault returns its attributes.
func (w *Wrapper) Inspect(ctx context.Context, ref keywrap.Ref) (keywrap.KeyInfo, error) {
	if err := checkRef(ref); err != nil {
		return keywrap.KeyInfo{}, err
	}
	start := time.Now()
	info, err := w.inspect(ctx, ref)
	w.done(ctx, opInspect, ref, info.Version, start, err)
	return info, err
}

func (w *Wrapper) inspect(ctx context.Context, ref keywrap.Ref) (keywrap.KeyInfo, error) {
	c, err := w.client(ref)
	if err != nil {
		return keywrap.KeyInfo{}, w.classify(err, opInspect, ref)
	}
	resp, err := c.GetKey(ctx, ref.KeyName, ref.Version, nil)
	if err != nil {
		return keywrap.KeyInfo{}, w.classify(err, opInspect, ref)
	}
	info, err := keyInfo(resp.KeyBundle)
	if err != nil {
		return keywrap.KeyInfo{}, w.classify(err, opInspect, ref)
	}
	if err := sameKey(ref, info.KeyID, ref.Version); err != nil {
		return keywrap.KeyInfo{}, w.classify(err, opInspect, ref)
	}
	if err := w.checkOwner(ref, info); err != nil {
		// Nothing else about a key not tagged for the tenant is returned:
		// its state must not be learnable by naming it (API.md §5).
		return keywrap.KeyInfo{}, err
	}
	if w.checksOwner(ref) {
		info.OwnershipTag = w.tag
	}
	return info, nil
}

// checksOwner reports whether reads of ref must prove its ownership.
func (w *Wrapper) checksOwner(ref keywrap.Ref) bool {
	return w.tag != "" && ref.Source == keywrap.Customer
}

// checkOwner refuses a customer key version whose ownership tag does not
// list ref.Owner. A customer reference without an owner is refused too, so
// a caller that forgets to name the tenant fails closed.
func (w *Wrapper) checkOwner(ref keywrap.Ref, info keywrap.KeyInfo) error {
	if !w.checksOwner(ref) {
		return nil
	}
	if ref.Owner == "" {
		return errcode.New(errcode.Internal, "The customer key reference names no tenant to check the key's ownership tag against.")
	}
	return keywrap.CheckOwnership(info, w.tag, ref.Owner)
}

// Wrap reads the key first and refuses, without calling wrapKey, a version
// that is disabled, outside its validity window, not RSA ≥ 2048 or without
// wrapKey in key_ops (Key Vault is not documented to refuse wrapKey on a
// disabled key). It then wraps with RSA-OAEP-256 on exactly the version read.
func (w *Wrapper) Wrap(ctx context.Context, ref keywrap.Ref, dataKey []byte) (keywrap.Wrapped, error) {
	if err := checkRef(ref); err != nil {
		return keywrap.Wrapped{}, err
	}
	if len(dataKey) == 0 {
		return keywrap.Wrapped{}, errcode.New(errcode.Internal, "No data key was given to wrap.")
	}
	start := time.Now()
	out, err := w.wrap(ctx, ref, dataKey)
	w.done(ctx, opWrap, ref, out.Version, start, err)
	return out, err
}

func (w *Wrapper) wrap(ctx context.Context, ref keywrap.Ref, dataKey []byte) (keywrap.Wrapped, error) {
	info, err := w.inspect(ctx, ref)
	if err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckEnabled(info, w.now()); err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckType(info); err != nil {
		return keywrap.Wrapped{}, err
	}
	if err := keywrap.CheckOperations(info, keywrap.OpWrapKey); err != nil {
		return keywrap.Wrapped{}, err
	}
	c, err := w.client(ref)
	if err != nil {
		return keywrap.Wrapped{}, w.classify(err, opWrap, ref)
	}
	resp, err := c.WrapKey(ctx, ref.KeyName, info.Version, azkeys.KeyOperationParameters{
		Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256),
		Value:     dataKey,
	}, nil)
	if err != nil {
		return keywrap.Wrapped{}, w.classify(err, opWrap, ref)
	}
	if resp.KID == nil || len(resp.Result) == 0 {
		return keywrap.Wrapped{}, w.classify(errMalformed("wrapKey response without kid or value"), opWrap, ref)
	}
	kid := string(*resp.KID)
	// The answer must name the version we checked: anything else would
	// record a key id we never vetted.
	if err := sameKey(ref, kid, info.Version); err != nil {
		return keywrap.Wrapped{}, w.classify(err, opWrap, ref)
	}
	return keywrap.Wrapped{KeyID: kid, Version: info.Version, Algorithm: keywrap.Algorithm, WrappedKey: resp.Result}, nil
}

// Unwrap unwraps with exactly the recorded version: wr.Version (or the
// version in wr.KeyID) is required, and wr.KeyID, when set, must name ref's
// vault and key. Expired keys still unwrap (Key Vault allows it); disabled
// keys and revoked grants fail with Key Vault's answer.
func (w *Wrapper) Unwrap(ctx context.Context, ref keywrap.Ref, wr keywrap.Wrapped) ([]byte, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	version, err := keywrap.UnwrapVersion(ref, wr)
	if err != nil {
		return nil, err
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256 // the only one UnwrapVersion lets through
	start := time.Now()
	ref.Version = version
	out, err := w.unwrap(ctx, ref, alg, wr.WrappedKey)
	w.done(ctx, opUnwrap, ref, version, start, err)
	return out, err
}

func (w *Wrapper) unwrap(ctx context.Context, ref keywrap.Ref, alg azkeys.EncryptionAlgorithm, wrapped []byte) ([]byte, error) {
	if w.checksOwner(ref) {
		// Read the exact version first: its tag must still list the
		// tenant, so removing the tenant from the tag revokes restores
		// like disabling the key does (API.md §5).
		if _, err := w.inspect(ctx, ref); err != nil {
			return nil, err
		}
	}
	c, err := w.client(ref)
	if err != nil {
		return nil, w.classify(err, opUnwrap, ref)
	}
	resp, err := c.UnwrapKey(ctx, ref.KeyName, ref.Version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: wrapped}, nil)
	if err != nil {
		return nil, w.classify(err, opUnwrap, ref)
	}
	if len(resp.Result) == 0 {
		return nil, w.classify(errMalformed("unwrapKey response without value"), opUnwrap, ref)
	}
	return resp.Result, nil
}

func checkRef(ref keywrap.Ref) error { return keywrap.CheckRef(ref) }

// sameKey checks that kid names ref's vault (host) and key, with version.
func sameKey(ref keywrap.Ref, kid, version string) error {
	if !keywrap.SameKey(ref, kid, version) {
		return errMalformed("Key Vault answered with key id " + truncate(kid, 200) + " for another key or version")
	}
	return nil
}

// keyInfo converts a KeyBundle; it requires a versioned kid.
func keyInfo(b azkeys.KeyBundle) (keywrap.KeyInfo, error) {
	if b.Key == nil || b.Key.KID == nil {
		return keywrap.KeyInfo{}, errMalformed("key bundle without key id")
	}
	info := keywrap.KeyInfo{KeyID: string(*b.Key.KID), Version: b.Key.KID.Version()}
	if !keywrap.ValidKeyVersion(info.Version) {
		return keywrap.KeyInfo{}, errMalformed("key id without version")
	}
	if b.Key.Kty != nil {
		info.KeyType = string(*b.Key.Kty)
	}
	if len(b.Key.N) > 0 {
		info.KeySize = new(big.Int).SetBytes(b.Key.N).BitLen()
	}
	for _, op := range b.Key.KeyOps {
		if op != nil {
			info.Operations = append(info.Operations, string(*op))
		}
	}
	for k, v := range b.Tags {
		if v != nil {
			if info.Tags == nil {
				info.Tags = map[string]string{}
			}
			info.Tags[k] = *v
		}
	}
	if a := b.Attributes; a != nil {
		// Key Vault always sends enabled; a missing one is treated as
		// disabled so that a malformed answer can never let a wrap through.
		info.Enabled = a.Enabled != nil && *a.Enabled
		if a.NotBefore != nil {
			info.NotBefore = a.NotBefore.Unix()
		}
		if a.Expires != nil {
			info.Expires = a.Expires.Unix()
		}
	}
	return info, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// done logs one operation: never the data key, never Azure response text.
func (w *Wrapper) done(ctx context.Context, op string, ref keywrap.Ref, version string, start time.Time, err error) {
	attrs := []any{"op", op, "source", string(ref.Source), "vault", keywrap.VaultName(ref.VaultURL),
		"key", ref.KeyName, "version", version, "durationMs", time.Since(start).Milliseconds()}
	if err == nil {
		w.log.DebugContext(ctx, "keyvault: ok", attrs...)
		return
	}
	d := details(err)
	attrs = append(attrs, "code", string(errcode.CodeOf(err)), "status", d.status, "errorCode", d.code, "innerCode", d.inner)
	w.log.InfoContext(ctx, "keyvault: failed", attrs...)
}
