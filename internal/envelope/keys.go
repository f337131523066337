package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// HKDF info labels, one per purpose (FORMAT.md §3). Distinct labels make the
// three values independent even though they share the data key and salt.
const (
	labelPayload    = "byok-backup v1 payload key"
	labelManifest   = "byok-backup v1 manifest key"
	labelCommitment = "byok-backup v1 key commitment"
)

const (
	saltSize       = 32
	commitmentSize = 32
	macSize        = 32
	tagSize        = 16
	nonceSize      = 12
)

// subkeys are the per-backup values derived from a data key and a salt.
type subkeys struct {
	payload    []byte // AES-256-GCM key for chunks
	manifest   []byte // HMAC-SHA-256 key for the manifest
	commitment []byte // public: stored in the manifest
}

func derive(dk *DataKey, salt []byte) (*subkeys, error) {
	if dk == nil || dk.destroyed {
		return nil, errDestroyed
	}
	var s subkeys
	var err error
	// hkdf.Key only fails for output lengths beyond 255·32 bytes.
	if s.payload, err = hkdf.Key(sha256.New, dk.k[:], salt, labelPayload, 32); err != nil {
		return nil, fmt.Errorf("envelope: internal error: %w", err)
	}
	if s.manifest, err = hkdf.Key(sha256.New, dk.k[:], salt, labelManifest, 32); err != nil {
		return nil, fmt.Errorf("envelope: internal error: %w", err)
	}
	if s.commitment, err = hkdf.Key(sha256.New, dk.k[:], salt, labelCommitment, commitmentSize); err != nil {
		return nil, fmt.Errorf("envelope: internal error: %w", err)
	}
	return &s, nil
}

// payloadAEAD builds the chunk cipher and zeroes the payload key: from here
// on only the AES key schedule inside the AEAD holds it (Go offers no way to
// zero that; it is garbage once the AEAD is unreachable).
func (s *subkeys) payloadAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.payload)
	clear(s.payload)
	if err != nil {
		return nil, fmt.Errorf("envelope: internal error: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("envelope: internal error: %w", err)
	}
	return aead, nil
}

func (s *subkeys) zero() {
	clear(s.payload)
	clear(s.manifest)
}
