package azerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/twinit/byok-backup/internal/azerr"
)

const secret = "tenant-secret-path"

// sdkError is an *azcore.ResponseError as the SDK builds it from a
// response to a request whose URL holds a file path.
func sdkError(t *testing.T) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:10000/devstoreaccount1/assets/acme/"+secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{
		StatusCode: 404, Status: "404 Not Found", Request: req,
		Header: http.Header{"X-Ms-Error-Code": {"BlobNotFound"}, "X-Ms-Request-Id": {"req-1"}},
		Body:   io.NopCloser(strings.NewReader("<Error><Code>BlobNotFound</Code><Message>" + secret + "</Message></Error>")),
	}
	return runtime.NewResponseError(resp)
}

func TestRedactResponseError(t *testing.T) {
	orig := fmt.Errorf("download: %w", sdkError(t))
	if !strings.Contains(orig.Error(), secret) {
		t.Fatalf("the SDK's text no longer names the URL; this test proves nothing: %v", orig)
	}
	got := azerr.Redact(orig)
	if strings.Contains(got.Error(), secret) || strings.Contains(fmt.Errorf("wrapped: %w", got).Error(), secret) {
		t.Fatalf("redacted text leaks: %v", got)
	}
	if got.Error() != "storage answered 404 BlobNotFound (request req-1)" {
		t.Fatalf("redacted text = %q", got.Error())
	}
	var re *azcore.ResponseError
	if !errors.As(got, &re) || re.StatusCode != 404 || !bloberror.HasCode(got, bloberror.BlobNotFound) || !errors.Is(got, orig) {
		t.Fatal("classification lost")
	}
	if azerr.Redact(got) != got {
		t.Fatal("redacting twice wraps twice")
	}
}

func TestRedactTransportError(t *testing.T) {
	orig := &url.Error{Op: "Put", URL: "http://127.0.0.1:10000/devstoreaccount1/assets/acme/" + secret, Err: context.Canceled}
	got := azerr.Redact(fmt.Errorf("upload: %w", orig))
	if strings.Contains(got.Error(), secret) || got.Error() != "Put request failed: context canceled" {
		t.Fatalf("redacted text = %q", got.Error())
	}
	if !errors.Is(got, context.Canceled) {
		t.Fatal("cancellation lost")
	}
	plain := errors.New("other")
	if azerr.Redact(plain) != plain || azerr.Redact(nil) != nil {
		t.Fatal("errors without SDK text must pass unchanged")
	}
}

func TestHasTableCode(t *testing.T) {
	exists := &azcore.ResponseError{StatusCode: 409, ErrorCode: string(aztables.TableAlreadyExists)}
	wrapped := fmt.Errorf("create: %w", azerr.Redact(exists))
	switch {
	case !azerr.HasTableCode(wrapped, aztables.EntityNotFound, aztables.TableAlreadyExists):
		t.Error("a wrapped, redacted TableAlreadyExists is not found")
	case azerr.HasTableCode(wrapped, aztables.EntityNotFound):
		t.Error("TableAlreadyExists matches EntityNotFound")
	case azerr.HasTableCode(errors.New("plain"), aztables.TableAlreadyExists), azerr.HasTableCode(nil, aztables.TableAlreadyExists):
		t.Error("an error without a service answer matches")
	}
}
