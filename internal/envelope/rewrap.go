package envelope

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// Rewrap returns manifest m with its key reference replaced by key (the
// same data key wrapped by another key) and its MAC recomputed, every other
// field unchanged (FORMAT.md §10): chunks are never touched. It first
// authenticates m with dk as the backup of tenant and backupID expects
// ([Open]), so only an authentic manifest is ever re-wrapped, and the
// result is authentic under the same data key, salt and commitment: a
// reader opens it exactly like the original.
//
// The caller must have obtained key.WrappedKey by wrapping dk itself: the
// MAC proves the manifest was written by a holder of dk, and a wrapped key
// that does not unwrap to dk fails the reader's commitment check.
func Rewrap(m *Manifest, dk *DataKey, tenant, backupID string, key KeyRef) ([]byte, error) {
	r, err := Open(m, dk, tenant, backupID)
	if err != nil {
		return nil, err
	}
	if err := key.validate(); err != nil {
		return nil, fmt.Errorf("envelope: re-wrap key reference: %w", err)
	}
	nm := *r.m
	nm.Key = key
	if err := nm.validate(); err != nil {
		return nil, fmt.Errorf("envelope: re-wrapped manifest: %w", err)
	}
	keys, err := derive(dk, nm.salt)
	if err != nil {
		return nil, err
	}
	defer keys.zero()
	body := nm.appendBody(nil)
	if len(body)+macSize > MaxManifestSize {
		return nil, fmt.Errorf("envelope: re-wrapped manifest is larger than %d bytes", MaxManifestSize)
	}
	mac := hmac.New(sha256.New, keys.manifest)
	mac.Write(body)
	return mac.Sum(body), nil
}
