package azure

import (
	"io"

	"github.com/twinit/byok-backup/internal/azerr"
)

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
