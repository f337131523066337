// Package errcode is the one error model of the service: an [Error] carries
// a contract code (API.md §2 "Error codes") and a message written for
// the caller, and wraps the underlying cause, which is logged but never shown.
//
// Every layer returns *Error for outcomes a caller must see (validation,
// key causes, integrity); anything else is Internal at the edge.
package errcode

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is a contract error code.
type Code string

// The contract's codes.
const (
	InvalidRequest           Code = "InvalidRequest"
	Unauthorized             Code = "Unauthorized"
	Forbidden                Code = "Forbidden"
	NotFound                 Code = "NotFound"
	BackupNotFound           Code = "BackupNotFound"
	Conflict                 Code = "Conflict"
	KeyValidationFailed      Code = "KeyValidationFailed"
	Throttled                Code = "Throttled"
	Internal                 Code = "Internal"
	ServiceUnavailable       Code = "ServiceUnavailable"
	KeyVaultUnreachable      Code = "KeyVaultUnreachable"
	KeyVaultAuthFailed       Code = "KeyVaultAuthFailed"
	KeyNotFound              Code = "KeyNotFound"
	KeyDisabled              Code = "KeyDisabled"
	KeyAccessDenied          Code = "KeyAccessDenied"
	KeyOperationNotPermitted Code = "KeyOperationNotPermitted"
	UnsupportedKeyType       Code = "UnsupportedKeyType"
	KeyOwnershipNotProven    Code = "KeyOwnershipNotProven"
	CustomerKeyUnavailable   Code = "CustomerKeyUnavailable"
	IntegrityCheckFailed     Code = "IntegrityCheckFailed"
	BackupIncomplete         Code = "BackupIncomplete"
	// BackupDeleted: a restore of a soft-deleted backup (API.md §6).
	BackupDeleted Code = "BackupDeleted"
)

// Status is the HTTP status for a code when it is the outcome of a request.
// Key causes found while validating a key answer 422 (API.md §2: "422 …
// where code is the specific cause"); KeyVaultUnreachable and the like only
// reach a synchronous caller through validation.
func Status(c Code) int {
	switch c {
	case InvalidRequest:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound, BackupNotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Throttled:
		return http.StatusTooManyRequests
	case ServiceUnavailable:
		return http.StatusServiceUnavailable
	case KeyValidationFailed, KeyVaultUnreachable, KeyVaultAuthFailed, KeyNotFound, KeyDisabled,
		KeyAccessDenied, KeyOperationNotPermitted, UnsupportedKeyType, CustomerKeyUnavailable,
		KeyOwnershipNotProven:
		return http.StatusUnprocessableEntity
	case IntegrityCheckFailed, BackupIncomplete, BackupDeleted:
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// Error is an outcome with a contract code. Message is safe to show to the
// caller: it never holds Azure response text, secrets or stack traces.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause; logged, never returned to a caller
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error without a cause.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps err as its (hidden) cause.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// As finds the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return Internal
}

// Public returns the code and message that may be shown to a caller: the
// *Error's own for known outcomes, a generic sentence for anything else.
func Public(err error) (Code, string) {
	if e, ok := As(err); ok && e.Code != Internal {
		return e.Code, e.Message
	}
	return Internal, "The service failed to complete the request. It has been logged; try again later."
}

// Body is API.md's error body: {"error": {"code", "message"}}.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inner object of [Body], also used for backup and restore
// `error` and `fallbackReason` fields.
type Detail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}
