package azure_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/blobstore/storetest"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
)

var inst *azurite.Instance

func TestMain(m *testing.M) { azurite.RunTests(m, &inst) }

func open(t *testing.T, connStr, name string, opts *container.ClientOptions) *azure.Store {
	t.Helper()
	c, err := container.NewClientFromConnectionString(connStr, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return azure.New(c)
}

func TestConformance(t *testing.T) {
	s := open(t, inst.ConnectionString(), "backups", nil)
	if err := s.CreateContainer(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateContainer(t.Context()); err != nil {
		t.Fatalf("CreateContainer is not idempotent: %v", err)
	}
	storetest.Run(t, func(t *testing.T) blobstore.Store { return s })
}

// TestConformanceWithRetry: the retry decorator must not change semantics.
func TestConformanceWithRetry(t *testing.T) {
	s := open(t, inst.ConnectionString(), "backups-retry", nil)
	if err := s.CreateContainer(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := blobstore.NewRetry(s, nil)
	storetest.Run(t, func(t *testing.T) blobstore.Store { return r })
}

// TestMissingContainerIsPermanent: a missing container is a deployment
// fault: not "blob not found", and not worth retrying.
func TestMissingContainerIsPermanent(t *testing.T) {
	s := open(t, inst.ConnectionString(), "no-such-container", nil)
	_, err := s.GetBlob(t.Context(), "x")
	if err == nil || blobstore.IsNotExist(err) || blobstore.IsTransient(err) {
		t.Fatalf("GetBlob in a missing container: %v; want a permanent error", err)
	}
	if err := s.PutBlob(t.Context(), "x", []byte("x")); err == nil || blobstore.IsTransient(err) {
		t.Fatalf("PutBlob in a missing container: %v; want a permanent error", err)
	}
}

// TestUnreachableIsTransient: a storage endpoint that refuses connections
// is transient (the SDK's own retries are off to keep the test short).
func TestUnreachableIsTransient(t *testing.T) {
	port, err := azurite.FreePort() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	connStr := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%d/%[1]s;",
		azurite.AccountName, azurite.AccountKey, port)
	s := open(t, connStr, "backups", &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: -1},
	}})
	if _, err := s.GetBlob(t.Context(), "x"); !blobstore.IsTransient(err) {
		t.Fatalf("GetBlob against a stopped server: %v; want transient", err)
	}
	if err := s.PutBlob(t.Context(), "x", nil); !blobstore.IsTransient(err) {
		t.Fatalf("PutBlob against a stopped server: %v; want transient", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.GetBlob(ctx, "x"); blobstore.IsTransient(err) || err == nil {
		t.Fatalf("GetBlob with a cancelled context: %v; want a permanent error", err)
	}
}
