package azure_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
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

// TestServiceStoresTheMD5: PutBlob sends no Content-MD5 (chunks are
// authenticated by the restore), so the stored MD5 that GetBlob checks is
// the one the service computed: present and right, and a blob whose body
// doesn't match it is refused as transient.
func TestServiceStoresTheMD5(t *testing.T) {
	ctx := t.Context()
	s := open(t, inst.ConnectionString(), "backups-md5", nil)
	if err := s.CreateContainer(ctx); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("sealed chunk "), 1000)
	if err := s.PutBlob(ctx, "t/b/chunks/files/0000000000", data); err != nil {
		t.Fatal(err)
	}
	c, err := container.NewClientFromConnectionString(inst.ConnectionString(), "backups-md5", nil)
	if err != nil {
		t.Fatal(err)
	}
	props, err := c.NewBlobClient("t/b/chunks/files/0000000000").GetProperties(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum := md5.Sum(data); !bytes.Equal(props.ContentMD5, sum[:]) {
		t.Fatalf("stored Content-MD5 %x, want the service's %x", props.ContentMD5, sum)
	}
	// A stored MD5 that doesn't match the body (as a damaged read would
	// look) fails GetBlob's check.
	wrong := md5.Sum([]byte("other"))
	if _, err := c.NewBlobClient("t/b/chunks/files/0000000000").SetHTTPHeaders(ctx, blob.HTTPHeaders{BlobContentMD5: wrong[:]}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlob(ctx, "t/b/chunks/files/0000000000"); !errors.Is(err, blobstore.ErrTransient) {
		t.Fatalf("GetBlob of a body not matching its MD5: %v, want ErrTransient", err)
	}
}
