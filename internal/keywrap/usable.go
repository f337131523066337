package keywrap

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/twinit/byok-backup/internal/errcode"
)

// MinRSABits is the smallest RSA key the service accepts (API.md §2).
const MinRSABits = 2048

// The key operations a data key needs.
const (
	OpWrapKey   = "wrapKey"
	OpUnwrapKey = "unwrapKey"
)

// CheckEnabled refuses a disabled key version, or one outside its
// not-before/expiry window at now, with KeyDisabled.
func CheckEnabled(info KeyInfo, now time.Time) error {
	vault, name := describe(info)
	switch {
	case !info.Enabled:
		return errcode.New(errcode.KeyDisabled,
			"Key %s (version %s) in vault %s is disabled: enable it in the key vault, or configure another key.", name, info.Version, vault)
	case info.NotBefore != 0 && now.Unix() < info.NotBefore:
		return errcode.New(errcode.KeyDisabled,
			"Key %s (version %s) in vault %s is not valid before %s: change its activation date, or configure another key.",
			name, info.Version, vault, time.Unix(info.NotBefore, 0).UTC().Format(time.RFC3339))
	case info.Expires != 0 && now.Unix() >= info.Expires:
		return errcode.New(errcode.KeyDisabled,
			"Key %s (version %s) in vault %s expired on %s: rotate the key or extend its expiration date.",
			name, info.Version, vault, time.Unix(info.Expires, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckType refuses anything but an RSA or RSA-HSM key of at least
// [MinRSABits] with UnsupportedKeyType.
func CheckType(info KeyInfo) error {
	vault, name := describe(info)
	if info.KeyType != "RSA" && info.KeyType != "RSA-HSM" {
		return errcode.New(errcode.UnsupportedKeyType,
			"Key %s in vault %s is of type %s: BYOK needs an RSA or RSA-HSM key of at least %d bits; create one and configure it.",
			name, vault, orUnknown(info.KeyType), MinRSABits)
	}
	if info.KeySize < MinRSABits {
		return errcode.New(errcode.UnsupportedKeyType,
			"Key %s in vault %s has %d bits: BYOK needs an RSA key of at least %d bits (2048, 3072 or 4096); create one and configure it.",
			name, vault, info.KeySize, MinRSABits)
	}
	return nil
}

// CheckOperations refuses a key whose permitted operations (key_ops) lack
// one of ops with KeyOperationNotPermitted.
func CheckOperations(info KeyInfo, ops ...string) error {
	vault, name := describe(info)
	for _, op := range ops {
		if !slices.Contains(info.Operations, op) {
			return errcode.New(errcode.KeyOperationNotPermitted,
				"Key %s in vault %s does not permit the %s operation: add wrapKey and unwrapKey to the key's permitted operations.",
				name, vault, op)
		}
	}
	return nil
}

// describe returns vault and key names for messages, from the key id.
func describe(info KeyInfo) (vault, name string) {
	v, n, _, err := ParseKeyID(info.KeyID)
	if err != nil {
		return "(unknown)", "(unknown)"
	}
	return VaultName(v), n
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// DefaultOwnershipTag is the default BYOK_OWNERSHIP_TAG (API.md §5).
const DefaultOwnershipTag = "twinit-tenants"

// OwnershipTagMax is the longest tag value Key Vault accepts.
const OwnershipTagMax = 256

// Owns reports whether info's ownership tag (named tag; Key Vault tag names
// are matched case-insensitively, as Azure does) lists tenant. The value
// lists tenant ids separated by commas and/or spaces.
func Owns(info KeyInfo, tag, tenant string) bool {
	if tenant == "" {
		return false
	}
	for name, value := range info.Tags {
		if !strings.EqualFold(name, tag) {
			continue
		}
		for _, t := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if strings.EqualFold(t, tenant) {
				return true
			}
		}
	}
	return false
}

// CheckOwnership refuses, with KeyOwnershipNotProven, a key version whose
// tag does not list tenant. The message names the tag and the value to set
// and says nothing else about the key: the answer must be the same for any
// key not tagged for the tenant (API.md §5).
func CheckOwnership(info KeyInfo, tag, tenant string) error {
	if Owns(info, tag, tenant) {
		return nil
	}
	vault, name := describe(info)
	return OwnershipError(vault, name, tag, tenant)
}

// OwnershipError is the KeyOwnershipNotProven error for key name in vault.
func OwnershipError(vault, name, tag, tenant string) *errcode.Error {
	return errcode.New(errcode.KeyOwnershipNotProven,
		"Key %s in vault %s is not tagged for tenant %s: set the tag %q on the key to %q (or add %s to the tenant ids it lists, separated by commas), then try again.",
		name, vault, tenant, tag, tenant, tenant)
}
