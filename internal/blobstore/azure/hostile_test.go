package azure_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/blobstore/azure"
)

// hostileStore is the adapter over a server that answers every download
// with a Content-Length of claimed bytes and then sends only a few.
func hostileStore(t *testing.T, claimed int64) *azure.Store {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Length", strconv.FormatInt(claimed, 10))
		h.Set("Content-Type", "application/octet-stream")
		h.Set("x-ms-blob-type", "BlockBlob")
		h.Set("x-ms-version", "2025-01-05")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("short"))
	}))
	t.Cleanup(srv.Close)
	c, err := container.NewClientWithNoCredential(srv.URL+"/devstoreaccount1/backups", &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return azure.New(c)
}

// TestHugeContentLengthIsRefusedBeforeAllocation: a blob that claims 1 GiB
// or 1 TiB while the reader expects at most a sealed chunk is ErrTooLarge
// (permanent: a retry would get the same answer), and the claim is not
// allocated: the heap grows by far less than the claim (1 TiB used to be
// a fatal out-of-memory that killed the process).
func TestHugeContentLengthIsRefusedBeforeAllocation(t *testing.T) {
	const limit = 64<<20 + 16
	for _, claimed := range []int64{1 << 30, 1 << 40} {
		t.Run(strconv.FormatInt(claimed, 10), func(t *testing.T) {
			s := hostileStore(t, claimed)
			r := blobstore.NewRetry(s, nil)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := blobstore.GetInto(t.Context(), r, "acme/b1/a1/chunks/files/0", make([]byte, 0, 1024), limit)
			runtime.ReadMemStats(&after)
			if !blobstore.IsTooLarge(err) || blobstore.IsTransient(err) {
				t.Fatalf("GetInto of a %d-byte claim: %v; want ErrTooLarge, not transient", claimed, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("refusing a %d-byte claim allocated %d bytes", claimed, grew)
			}
		})
	}
}

// TestUnlimitedGetDoesNotTrustContentLength: GetBlob has no limit, but it
// allocates for the bytes that arrive, not for what the header claims.
func TestUnlimitedGetDoesNotTrustContentLength(t *testing.T) {
	s := hostileStore(t, 1<<30)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := s.GetBlob(t.Context(), "x")
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("GetBlob of a body cut short succeeded")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("GetBlob of a 1 GiB claim allocated %d bytes", grew)
	}
}
