package envelope

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
)

// DataKeySize is the size of a data key in bytes (AES-256).
const DataKeySize = 32

// DataKey is a backup's 256-bit data key. It is printed and logged as
// "REDACTED"; its bytes leave the package only through [DataKey.Bytes], to be
// wrapped. Destroy zeroes it.
type DataKey struct {
	k         [DataKeySize]byte
	destroyed bool
}

var errDestroyed = errors.New("envelope: the data key has been destroyed")

// NewDataKey returns a fresh random data key from crypto/rand.
func NewDataKey() (*DataKey, error) {
	dk := &DataKey{}
	if _, err := rand.Read(dk.k[:]); err != nil {
		return nil, fmt.Errorf("envelope: failed to generate a data key: %w", err)
	}
	return dk, nil
}

// DataKeyFromBytes returns a data key holding a copy of b, an unwrapped data
// key. The caller still owns b and should zero it (clear(b)) once done.
func DataKeyFromBytes(b []byte) (*DataKey, error) {
	if len(b) != DataKeySize {
		return nil, fmt.Errorf("envelope: a data key is %d bytes, got %d", DataKeySize, len(b))
	}
	dk := &DataKey{}
	copy(dk.k[:], b)
	return dk, nil
}

// Bytes returns the key's 32 bytes so that they can be wrapped with a key
// encryption key, and for nothing else. The slice aliases the key: don't
// modify or retain it, and don't log it; [DataKey.Destroy] zeroes it. It
// returns nil after Destroy.
func (dk *DataKey) Bytes() []byte {
	if dk.destroyed {
		return nil
	}
	return dk.k[:]
}

// Destroy zeroes the key. Writers and readers already created from it keep
// working: they hold derived subkeys, not the data key.
func (dk *DataKey) Destroy() {
	clear(dk.k[:])
	dk.destroyed = true
}

// String redacts the key.
func (dk *DataKey) String() string { return "envelope.DataKey(REDACTED)" }

// GoString redacts the key from %#v.
func (dk *DataKey) GoString() string { return dk.String() }

// Format redacts the key from every fmt verb.
func (dk *DataKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(dk.String())) }

// LogValue redacts the key from log/slog output.
func (dk *DataKey) LogValue() slog.Value { return slog.StringValue(dk.String()) }

var _ slog.LogValuer = (*DataKey)(nil)
