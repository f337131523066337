package keywrap

import (
	"strings"

	"github.com/twinit/byok-backup/internal/errcode"
)

// The checks every [Wrapper] makes before it talks to a vault, here so that
// the Key Vault adapter and the in-memory one (keywrap/mem) refuse the same
// requests with the same codes.

// CheckRef refuses references that could not have come from validated
// settings: the vault URL must be an https origin and names must be valid.
func CheckRef(ref Ref) error {
	vault, name, version, err := ParseKeyID(ref.KeyID())
	if err != nil || vault == "" || name != ref.KeyName || version != ref.Version {
		return errcode.New(errcode.InvalidRequest,
			"The key reference is not valid: check the vault name, key name and key version.")
	}
	if ref.Source == Customer && !ValidTenantID(ref.TenantID) {
		return errcode.New(errcode.InvalidRequest,
			"The customer key reference has no valid Entra tenant id: set tenantId to the GUID of the tenant that owns the vault.")
	}
	if ref.Source != Customer && ref.Source != Platform {
		return errcode.New(errcode.InvalidRequest, "The key reference has no key source (customer or platform).")
	}
	return nil
}

// SameKey reports whether kid is a versioned key id naming ref's vault
// (host) and key, and, when version is set, that version.
func SameKey(ref Ref, kid, version string) bool {
	v, n, ver, err := ParseKeyID(kid)
	if err != nil {
		return false
	}
	want, _, _, err := ParseKeyID(Ref{VaultURL: ref.VaultURL, KeyName: ref.KeyName}.KeyID())
	if err != nil {
		return false
	}
	return v == want && strings.EqualFold(n, ref.KeyName) && ver != "" && (version == "" || strings.EqualFold(ver, version))
}

// UnwrapVersion checks a request to unwrap w with ref and returns the key
// version to unwrap with: w.Version (or the version in w.KeyID) is required,
// w.KeyID, when set, must name ref's vault and key, and the algorithm must be
// [Algorithm]. ref must have passed [CheckRef].
func UnwrapVersion(ref Ref, w Wrapped) (string, error) {
	version := w.Version
	if w.KeyID != "" {
		_, _, v, err := ParseKeyID(w.KeyID)
		if err != nil {
			return "", err
		}
		if version == "" {
			version = v
		}
		if !SameKey(ref, w.KeyID, version) {
			return "", errcode.New(errcode.InvalidRequest,
				"The recorded key id does not match key %s in vault %s: the stored key reference was changed; the data key is not unwrapped.",
				ref.KeyName, VaultName(ref.VaultURL))
		}
	}
	if !ValidKeyVersion(version) || (ref.Version != "" && !strings.EqualFold(ref.Version, version)) {
		return "", errcode.New(errcode.InvalidRequest,
			"The wrapped data key does not name the key version that wrapped it: it can only be unwrapped with exactly that version.")
	}
	// Only the algorithm Wrap uses: whoever can write a stored algorithm
	// must not be able to make the vault decrypt with RSA1_5 (a padding
	// oracle) or OAEP with SHA-1.
	if w.Algorithm != Algorithm {
		return "", errcode.New(errcode.UnsupportedKeyType,
			"The data key was wrapped with algorithm %q, which the service does not unwrap: it unwraps only %s.", truncate(w.Algorithm, 40), Algorithm)
	}
	if len(w.WrappedKey) == 0 {
		return "", errcode.New(errcode.InvalidRequest, "The wrapped data key is empty.")
	}
	return version, nil
}
