package catalog

import (
	"fmt"

	"github.com/twinit/byok-backup/internal/errcode"
)

// The sentinels are *errcode.Error values, so a caller both branches on them
// with errors.Is and maps them to API.md's codes with errcode.CodeOf.
// Implementations wrap them with %w and the underlying storage error.
var (
	// ErrNotFound: no row with that tenant and id.
	ErrNotFound = errcode.New(errcode.NotFound, "No backup or restore with that id exists for this tenant.")
	// ErrExists: Create found a row with the same id. A redelivered queue
	// message or a repeated POST hits this and must treat it as done.
	ErrExists = errcode.New(errcode.Conflict, "A backup or restore with that id already exists.")
	// ErrConflict: Update's ETag no longer matches; someone else changed the
	// row. Re-read it and decide again.
	ErrConflict = errcode.New(errcode.Conflict, "The backup or restore was changed by another request; read it again and retry.")
	// ErrInvalidToken: a continuationToken that this package did not issue.
	ErrInvalidToken = errcode.New(errcode.InvalidRequest, "The continuationToken is not valid; pass the value returned by the previous page unchanged.")
	// ErrIllegalTransition: a status change the state machine refuses; the
	// returned error is a *TransitionError that matches it with errors.Is.
	ErrIllegalTransition = errcode.New(errcode.Conflict, "The backup or restore is not in a state that allows this change.")
)

// TransitionError is a refused status change.
type TransitionError struct {
	Kind     string // "backup" or "restore"
	From, To string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("catalog: illegal %s transition %s -> %s", e.Kind, e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrIllegalTransition) and errcode.CodeOf work.
func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }
