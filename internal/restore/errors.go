package restore

import (
	"context"
	"errors"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/errcode"
)

// retryError marks a failure that a later delivery of the message may not
// meet (storage or Key Vault unavailable, the target tenant busy). The
// worker leaves the row for the redelivery, or fails it on the last one.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func retryable(err error) error { return &retryError{err} }

// isRetryable reports whether err may pass on a later attempt: marked
// retryable, a transient storage error, or an outcome with no contract
// code of its own (Internal, ServiceUnavailable, Throttled).
func isRetryable(err error) bool {
	var re *retryError
	if errors.As(err, &re) || blobstore.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch errcode.CodeOf(err) {
	case errcode.Internal, errcode.ServiceUnavailable, errcode.Throttled, errcode.KeyVaultUnreachable:
		return true
	}
	return false
}

// detail is the contract's {code, message} of a failed restore.
func detail(err error) errcode.Detail {
	code, msg := errcode.Public(err)
	return errcode.Detail{Code: code, Message: msg}
}

// errIntegrity is the failure for any tampering the restore itself detects
// (a missing chunk or manifest, counts that don't match the catalog): the
// same opaque message as the envelope's authentication failures.
func errIntegrity(cause error) error {
	return errcode.Wrap(cause, errcode.IntegrityCheckFailed,
		"The backup failed to decrypt and authenticate: it may be corrupted or tampered with. Nothing was written to the target tenant. Restore from another backup and check who can write to the backups container.")
}
