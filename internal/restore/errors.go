package restore

import (
	"github.com/twinit/byok-backup/internal/errcode"
)

// errIntegrity is the failure for any tampering the restore itself detects
// (a missing chunk or manifest, counts that don't match the catalog): the
// same opaque message as the envelope's authentication failures.
func errIntegrity(cause error) error {
	return errcode.Wrap(cause, errcode.IntegrityCheckFailed,
		"The backup failed to decrypt and authenticate: it may be corrupted or tampered with. Nothing was written to the target tenant. Restore from another backup and check who can write to the backups container.")
}
