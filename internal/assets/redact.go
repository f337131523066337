package assets

import (
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/twinit/byok-backup/internal/azerr"
)

// Errors and logs never name a file path, a record id, a property name or
// a value: they are the tenant's data (contract §3), and error chains end
// up in service logs. Where the caller knows an item's position, errors
// say "file #12" / "record #340"; where only the key is at hand they say
// tag(key).

// tag names a file path or record id in an error without spelling it: the
// first 8 hex digits of its SHA-256, so an operator who has the path can
// match it. A guessable path is only weakly hidden; positions are used
// wherever they are known.
func tag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "h:" + hex.EncodeToString(sum[:4])
}

// redactReader keeps the SDK's retry reader errors (a failed re-download
// carries the blob URL, i.e. the file path) out of error chains.
type redactReader struct{ io.ReadCloser }

func (r redactReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF { // io.Copy and friends compare with ==
		err = azerr.Redact(err)
	}
	return n, err
}
