package job

import (
	"errors"

	"github.com/twinit/byok-backup/internal/errcode"
)

// permanentError marks a failure that no later delivery can fix (restic's
// backoff.Permanent is the model).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the job fails at once instead of being
// retried. It keeps err's chain (errcode.CodeOf, errors.Is still see it).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether retrying err can't help: marked with
// [Permanent] anywhere in its chain, or carrying one of the codes that
// describe the request or the stored data rather than the moment
// ([permanentCode]). Everything else (storage, Key Vault, the lease, a
// crash, an error with no code) is retried until the last delivery.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || permanentCode(errcode.CodeOf(err))
}

// permanentCode is the one list of codes that are permanent by themselves.
// A code that is permanent only in some contexts (CustomerKeyUnavailable:
// the customer's refusal is, an unreachable vault reported under it is
// not; Conflict: a full spool is, a lost lease is not) is marked with
// [Permanent] where the failure is made.
func permanentCode(c errcode.Code) bool {
	switch c {
	case errcode.InvalidRequest, errcode.BackupNotFound, errcode.BackupIncomplete, errcode.IntegrityCheckFailed, errcode.BackupDeleted:
		return true
	}
	return false
}
