package azure

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/twinit/byok-backup/internal/blobstore"
)

func TestClassify(t *testing.T) {
	resp := func(status int, code string) error {
		return fmt.Errorf("call: %w", &azcore.ResponseError{StatusCode: status, ErrorCode: code})
	}
	for _, c := range []struct {
		name                string
		err                 error
		notFound, transient bool
	}{
		{"BlobNotFound", resp(404, "BlobNotFound"), true, false},
		{"ContainerNotFound", resp(404, "ContainerNotFound"), false, false},
		{"ServerBusy", resp(503, "ServerBusy"), false, true},
		{"OperationTimedOut", resp(500, "OperationTimedOut"), false, true},
		{"InternalError", resp(500, "InternalError"), false, true},
		{"429", resp(429, ""), false, true},
		{"408", resp(408, ""), false, true},
		{"502", resp(502, ""), false, true},
		{"504", resp(504, ""), false, true},
		{"403 AuthorizationFailure", resp(403, "AuthorizationFailure"), false, false},
		{"400 InvalidBlobOrBlock", resp(400, "InvalidBlobOrBlock"), false, false},
		{"412 ConditionNotMet", resp(412, "ConditionNotMet"), false, false},
		{"network", errors.New("dial tcp: connection refused"), false, true},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false, false},
		{"deadline", context.DeadlineExceeded, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := classify(c.err)
			if blobstore.IsNotExist(got) != c.notFound || blobstore.IsTransient(got) != c.transient {
				t.Fatalf("classify(%v) = %v: notFound %t transient %t; want %t %t", c.err, got,
					blobstore.IsNotExist(got), blobstore.IsTransient(got), c.notFound, c.transient)
			}
			if !errors.Is(got, c.err) {
				t.Fatalf("classify dropped the cause from the chain")
			}
		})
	}
}
