package azure

import (
	"context"
	"fmt"
	"github.com/twinit/byok-backup/internal/ptr"
	"io"
	"iter"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

// prefix is the blob name prefix of a tenant's files. The trailing slash
// keeps tenant "a" from matching "ab/…" or "a-b/…".
func prefix(tenant string) string { return tenant + "/" }

// Files yields the tenant's files in name order, one listing page in
// memory at a time. It stops at the first error, which it yields.
func (s *Store) Files(ctx context.Context, tenant string) iter.Seq2[assets.File, error] {
	return func(yield func(assets.File, error) bool) {
		if err := assets.CheckTenant(tenant); err != nil {
			yield(assets.File{}, err)
			return
		}
		pre := prefix(tenant)
		pager := s.files.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
			Prefix:     to.Ptr(pre),
			Include:    container.ListBlobsInclude{Metadata: true},
			MaxResults: to.Ptr(s.opts.FilePageSize),
		})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				if bloberror.HasCode(err, bloberror.ContainerNotFound) {
					yield(assets.File{}, missingContainer(err))
					return
				}
				yield(assets.File{}, errcode.Wrap(fmt.Errorf("failed to list files of tenant %q: %w", tenant, azerr.Redact(err)),
					errcode.ServiceUnavailable, "The tenant's files could not be listed in blob storage. Try again later."))
				return
			}
			for _, it := range page.Segment.BlobItems {
				f, err := fileFromItem(it, pre)
				if err != nil {
					yield(assets.File{}, err)
					return
				}
				if !yield(f, nil) {
					return
				}
			}
		}
	}
}

func fileFromItem(it *container.BlobItem, pre string) (assets.File, error) {
	name := ptr.Value(it.Name)
	if !strings.HasPrefix(name, pre) || it.Properties == nil {
		return assets.File{}, fmt.Errorf("listing under %q returned blob %s outside it", pre, assets.Tag(name))
	}
	p := it.Properties
	f := assets.File{
		Path:               name[len(pre):],
		Size:               ptr.Value(p.ContentLength),
		ContentType:        ptr.Value(p.ContentType),
		ContentEncoding:    ptr.Value(p.ContentEncoding),
		ContentLanguage:    ptr.Value(p.ContentLanguage),
		ContentDisposition: ptr.Value(p.ContentDisposition),
		CacheControl:       ptr.Value(p.CacheControl),
	}
	if p.ETag != nil {
		f.ETag = string(*p.ETag)
	}
	if len(it.Metadata) > 0 {
		f.Metadata = make(map[string]string, len(it.Metadata))
		for k, v := range it.Metadata {
			f.Metadata[k] = ptr.Value(v)
		}
	}
	return f, nil
}

// OpenFile streams the content of f as listed: the read is conditional on
// f.ETag (when set), so a file rewritten since the listing fails with
// [ErrFileChanged] instead of mixing versions. Interrupted reads resume
// (azblob's retry reader, same ETag). The caller closes the reader.
func (s *Store) OpenFile(ctx context.Context, tenant string, f assets.File) (io.ReadCloser, error) {
	if err := assets.CheckTenant(tenant); err != nil {
		return nil, err
	}
	opts := &blob.DownloadStreamOptions{}
	if f.ETag != "" {
		etag := azcore.ETag(f.ETag)
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}
	}
	// An explicit Accept-Encoding stops net/http from adding "gzip" and then
	// transparently gunzipping blobs stored with Content-Encoding: gzip:
	// the backup must hold the stored bytes, not their decompression.
	ctx = policy.WithHTTPHeader(ctx, http.Header{"Accept-Encoding": {"identity"}})
	resp, err := s.files.NewBlobClient(prefix(tenant)+f.Path).DownloadStream(ctx, opts)
	switch {
	case bloberror.HasCode(err, bloberror.ConditionNotMet):
		// Azurite answers a conditional read of a deleted blob with 412, not
		// 404: ask whether the blob still exists before calling it changed.
		_, perr := s.files.NewBlobClient(prefix(tenant)+f.Path).GetProperties(ctx, nil)
		if bloberror.HasCode(perr, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, assets.ErrFileGone)
		}
		return nil, fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, assets.ErrFileChanged)
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return nil, fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, assets.ErrFileGone)
	case err != nil:
		return nil, errcode.Wrap(fmt.Errorf("failed to read file %s of tenant %q: %w", assets.Tag(f.Path), tenant, azerr.Redact(err)),
			errcode.ServiceUnavailable, "A tenant file could not be read from blob storage. Try again later.")
	}
	return redactReader{resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 3})}, nil
}

// DeleteFile removes one of the tenant's files; a missing file is not an error.
func (s *Store) DeleteFile(ctx context.Context, tenant, path string) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	_, err := s.files.NewBlobClient(prefix(tenant)+path).Delete(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("failed to delete file %s of tenant %q: %w", assets.Tag(path), tenant, azerr.Redact(err))
	}
	return nil
}
