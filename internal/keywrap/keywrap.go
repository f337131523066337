// Package keywrap wraps and unwraps per-backup data keys with a key held in
// Azure Key Vault: the customer's (BYOK) or the platform's. Implementations
// live in subpackages (keywrap/keyvault is the only importer of azkeys).
//
// Errors a caller branches on are *errcode.Error with one of the key codes
// (KeyVaultUnreachable, KeyVaultAuthFailed, KeyNotFound, KeyDisabled,
// KeyAccessDenied, KeyOperationNotPermitted, UnsupportedKeyType, Throttled),
// classified once, in the adapter, from status and error codes.
package keywrap

import (
	"context"
	"strings"
)

// Source says whose key wrapped a data key.
type Source string

const (
	Customer Source = "customer"
	Platform Source = "platform"
)

// Algorithm is the only wrap algorithm the service wraps and unwraps with.
const Algorithm = "RSA-OAEP-256"

// Ref names one key. VaultURL never comes from user input: for customer keys
// it is built from KEYVAULT_URL_TEMPLATE and a validated vault name, for the
// platform key from PLATFORM_KEY_ID.
type Ref struct {
	Source   Source
	VaultURL string // "https://contoso-kv.vault.azure.net/" (trailing slash optional)
	KeyName  string
	Version  string // "" means the key's current version
	TenantID string // customer's Entra tenant id; empty for the platform key
	// Owner is the service tenant using a customer key: the key version's
	// ownership tag must list it (API.md §5) when the wrapper checks
	// ownership. Empty for the platform key.
	Owner string
}

// KeyID is the key identifier URL, versioned when Version is set.
func (r Ref) KeyID() string {
	id := strings.TrimRight(r.VaultURL, "/") + "/keys/" + r.KeyName
	if r.Version != "" {
		id += "/" + r.Version
	}
	return id
}

// Wrapped is a wrapped data key and exactly which key version wrapped it.
type Wrapped struct {
	KeyID      string // versioned key id returned by Key Vault
	Version    string // the version part of KeyID
	Algorithm  string
	WrappedKey []byte
}

// KeyInfo is what Key Vault says about a key version.
type KeyInfo struct {
	KeyID              string // versioned
	Version            string
	KeyType            string // "RSA", "RSA-HSM", …
	KeySize            int    // bits
	Enabled            bool
	Operations         []string // key_ops
	NotBefore, Expires int64    // unix seconds, 0 = unset
	Tags               map[string]string
	// OwnershipTag names the tag that was found listing ref.Owner when the
	// wrapper checks ownership (API.md §5); "" when it doesn't.
	OwnershipTag string
}

// Wrapper wraps and unwraps data keys.
type Wrapper interface {
	// Wrap checks the key's attributes first (a disabled, expired or
	// not-yet-valid key, or one that is not RSA ≥ 2048, is refused) and wraps
	// dataKey with RSA-OAEP-256. The result names the version used.
	Wrap(ctx context.Context, ref Ref, dataKey []byte) (Wrapped, error)
	// Unwrap unwraps with exactly the recorded key version, and only with
	// w.Algorithm = [Algorithm]; anything else is UnsupportedKeyType
	// without a Key Vault call.
	Unwrap(ctx context.Context, ref Ref, w Wrapped) ([]byte, error)
	// Inspect reads the key's attributes (the version in ref, or the current one).
	Inspect(ctx context.Context, ref Ref) (KeyInfo, error)
}
