// Package azure is the Azure Blob Storage [blobstore.Store] over one
// container (`backups`). It classifies every storage error once, here, from
// status and bloberror codes (never message text): missing blobs become
// blobstore.ErrNotFound, throttling, timeouts, server errors and broken
// connections become blobstore.ErrTransient, the rest stays permanent.
package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/blobstore"
)

var (
	_ blobstore.Store      = (*Store)(nil)
	_ blobstore.IntoGetter = (*Store)(nil)
)

// Store is safe for concurrent use.
type Store struct {
	c *container.Client
}

// New returns a Store over the container client (constructed by the caller,
// e.g. service.Client.NewContainerClient("backups")).
func New(c *container.Client) *Store { return &Store{c: c} }

// CreateContainer creates the container if it is missing; call it once at startup.
func (s *Store) CreateContainer(ctx context.Context) error {
	if _, err := s.c.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("failed to create container: %w", classify(err))
	}
	return nil
}

// PutBlob stores data with one Put Blob. It sends no Content-MD5: every
// blob of the backups container is sealed or MAC'd (chunks, manifests),
// so a restore authenticates every byte; damage in transit is the
// transport's to catch (TLS to Azure, loopback to Azurite); and the
// service computes and stores the MD5 of a Put Blob itself, which GetBlob
// checks. Hashing each chunk here cost 8 % of a backup's throughput
// (docs/BENCHMARKS.md, issue 13). Put Blob, unlike Put Block, takes no
// slow path on Azurite without it.
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	_, err := s.c.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: new("application/octet-stream")},
	})
	if err != nil {
		return fmt.Errorf("failed to upload blob %s: %w", name, classify(err))
	}
	return nil
}

func (s *Store) GetBlob(ctx context.Context, name string) ([]byte, error) {
	return s.get(ctx, name, nil, -1, true)
}

// GetBlobInto reads the body straight into buf when the blob fits, so
// callers that pass their buffers back allocate nothing per blob. A blob
// whose Content-Length is over limit is refused before any allocation; a
// body that runs past limit anyway (a server that lies) is cut off at
// limit+1 bytes. Unlike GetBlob it does not recompute the Content-MD5:
// its callers read sealed chunks and authenticate every byte themselves
// (blobstore.IntoGetter), and the MD5 was a third of a restore's CPU.
func (s *Store) GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error) {
	return s.get(ctx, name, buf, max(limit, 0), false)
}

// maxPrealloc bounds what an unlimited GetBlob allocates on the word of
// the Content-Length header alone; past it the buffer grows only with the
// bytes that actually arrive.
const maxPrealloc = 8 << 20

// get reads blob name into buf; limit < 0 means no limit. checkMD5 checks
// the body against the stored Content-MD5.
func (s *Store) get(ctx context.Context, name string, buf []byte, limit int64, checkMD5 bool) ([]byte, error) {
	resp, err := s.c.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to download blob %s: %w", name, classify(err))
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	want := int64(0)
	if resp.ContentLength != nil && *resp.ContentLength >= 0 {
		want = *resp.ContentLength
	}
	if limit >= 0 {
		if want > limit {
			return nil, blobstore.TooLarge(name, want, limit)
		}
		body = io.LimitReader(resp.Body, limit+1)
	} else {
		want = min(want, maxPrealloc)
	}
	data := buf[:0]
	if int64(cap(data)) < want {
		data = make([]byte, 0, want)
	}
	data, err = readAll(body, data)
	if err != nil {
		return nil, fmt.Errorf("failed to read blob %s: %w", name, classify(err))
	}
	if limit >= 0 && int64(len(data)) > limit {
		return nil, blobstore.TooLarge(name, int64(len(data)), limit)
	}
	if checkMD5 && len(resp.ContentMD5) == md5.Size {
		if sum := md5.Sum(data); !bytes.Equal(sum[:], resp.ContentMD5) {
			// Damaged in transit (the stored copy was checked on upload).
			return nil, fmt.Errorf("blob %s failed its Content-MD5 check: %w", name, blobstore.ErrTransient)
		}
	}
	return data, nil
}

// readAll is io.ReadAll appending to b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (s *Store) List(ctx context.Context, prefix string, fn func(blobstore.Info) error) error {
	pager := s.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("failed to list blobs under %s: %w", prefix, classify(err))
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil {
				continue
			}
			info := blobstore.Info{Name: *item.Name}
			if item.Properties != nil && item.Properties.ContentLength != nil {
				info.Size = *item.Properties.ContentLength
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	// Collect first: deleting while paging could shift the listing.
	var names []string
	if err := s.List(ctx, prefix, func(i blobstore.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		_, err := s.c.NewBlobClient(name).Delete(ctx, nil)
		switch {
		case err == nil:
			n++
		case bloberror.HasCode(err, bloberror.BlobNotFound):
		default:
			return n, fmt.Errorf("failed to delete blob %s: %w", name, classify(err))
		}
	}
	return n, nil
}

// classify marks err with the blobstore sentinels. The SDK's text (URL,
// response body) is redacted: callers wrap and log the result.
// Cancellation is the caller's decision, never transient.
func classify(err error) error {
	err = azerr.Redact(err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		// No response at all: connection refused or reset, DNS, a body cut
		// short. The request may well succeed next time.
		return fmt.Errorf("%w: %w", blobstore.ErrTransient, err)
	}
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%w: %w", blobstore.ErrNotFound, err)
	case bloberror.HasCode(err, bloberror.ServerBusy, bloberror.OperationTimedOut, bloberror.InternalError):
		return fmt.Errorf("%w: %w", blobstore.ErrTransient, err)
	}
	switch re.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Errorf("%w: %w", blobstore.ErrTransient, err)
	}
	return err
}
