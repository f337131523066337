// Package azerr keeps Azure SDK error text out of logs and error chains.
//
// An *azcore.ResponseError's Error() holds the request URL (for the assets
// container and table that is a tenant's file path or record id) and the
// response body; a transport failure's *url.Error holds the URL too. Every
// adapter that calls the SDK with tenant data in the URL passes its errors
// through [Redact] before wrapping them, so the text that reaches a log
// line carries only the status, the service's error code and the request
// id. The original error stays in the chain (Unwrap) so classification
// (errors.As to *azcore.ResponseError, bloberror.HasCode, net.Error) works
// unchanged; nothing may log the unwrapped value.
package azerr

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// ResponseError is a service answer stripped to what an operator may read.
type ResponseError struct {
	StatusCode int
	ErrorCode  string
	// RequestID is the service's x-ms-request-id, for support cases.
	RequestID string
	err       error
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("storage answered %d", e.StatusCode)
	if e.ErrorCode != "" {
		msg += " " + e.ErrorCode
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// Unwrap returns the original error, for classification only.
func (e *ResponseError) Unwrap() error { return e.err }

// TransportError is a request that got no answer (connection refused or
// reset, DNS, timeout), without the URL.
type TransportError struct {
	// Op is the HTTP method.
	Op    string
	cause error // the *url.Error's inner error: hosts and ports at most
	err   error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s request failed: %v", e.Op, e.cause)
}

// Unwrap returns the original error, for classification only (net.Error,
// timeouts, context errors).
func (e *TransportError) Unwrap() error { return e.err }

// Redact returns err with any Azure response or transport failure in its
// chain replaced by a [ResponseError] or [TransportError] whose text holds
// no URL and no response body. Context errors and nil pass unchanged;
// anything else is returned as is.
func Redact(err error) error {
	if err == nil {
		return nil
	}
	var safe *ResponseError
	var safeT *TransportError
	if errors.As(err, &safe) || errors.As(err, &safeT) {
		return err
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		out := &ResponseError{StatusCode: re.StatusCode, ErrorCode: re.ErrorCode, err: err}
		if re.RawResponse != nil {
			out.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
		}
		return out
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// errors.Is(…, context.Canceled) still holds through Unwrap.
		return &TransportError{Op: ue.Op, cause: ue.Err, err: err}
	}
	return err
}

// HasTableCode reports whether err's chain holds a Table service answer
// with one of codes: the one check every Table Storage adapter makes.
func HasTableCode(err error, codes ...aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && slices.Contains(codes, aztables.TableErrorCode(re.ErrorCode))
}
