package assets

import (
	"crypto/sha256"
	"encoding/hex"
)

// Errors and logs never name a file path, a record id, a property name or
// a value: they are the tenant's data (API.md §3), and error chains end
// up in service logs. Where the caller knows an item's position, errors
// say "file #12" / "record #340"; where only the key is at hand they say
// Tag(key).

// Tag names a file path or record id in an error without spelling it: the
// first 8 hex digits of its SHA-256, so an operator who has the path can
// match it. A guessable path is only weakly hidden; positions are used
// wherever they are known.
func Tag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "h:" + hex.EncodeToString(sum[:4])
}
