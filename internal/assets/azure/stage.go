package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

// StageBlock uploads data as the uncommitted block blockID of the file
// `<tenant>/<path>`, with its Content-MD5. An uncommitted block is
// invisible: readers, listings and the blob's properties are unchanged
// until [Store.CommitFile] names it (the service discards blocks never
// committed after 7 days). All block ids of one blob must have the same
// length; [Store.PutFile] uses 8-byte ids, so callers should too.
func (s *Store) StageBlock(ctx context.Context, tenant, path, blockID string, data []byte) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := (assets.File{Path: path}).Validate(); err != nil {
		return fmt.Errorf("file %s can't be staged: %w", assets.Tag(path), err)
	}
	sum := md5.Sum(data)
	_, err := s.files.NewBlockBlobClient(prefix(tenant)+path).StageBlock(ctx, blockID,
		streaming.NopCloser(bytes.NewReader(data)),
		&blockblob.StageBlockOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
	if err != nil {
		return writeErr(ctx, fmt.Errorf("failed to stage a block of file %s of tenant %q: %w", assets.Tag(path), tenant, azerr.Redact(err)))
	}
	return nil
}

// CommitFile makes the staged blocks blockIDs, in order, the content of
// `<tenant>/<f.Path>`, with f's properties and metadata and contentMD5 (the
// MD5 of the whole content) as its Content-MD5, in one request: readers see
// the old version or the new one. No block ids means an empty file.
func (s *Store) CommitFile(ctx context.Context, tenant string, f assets.File, blockIDs []string, contentMD5 []byte) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("file %s can't be written: %w", assets.Tag(f.Path), err)
	}
	hdr := httpHeaders(f)
	hdr.BlobContentMD5 = contentMD5
	if blockIDs == nil {
		blockIDs = []string{}
	}
	_, err := s.files.NewBlockBlobClient(prefix(tenant)+f.Path).CommitBlockList(ctx, blockIDs,
		&blockblob.CommitBlockListOptions{HTTPHeaders: hdr, Metadata: metadataPtrs(f.Metadata)})
	if err != nil {
		return writeErr(ctx, fmt.Errorf("failed to commit file %s of tenant %q: %w", assets.Tag(f.Path), tenant, azerr.Redact(err)))
	}
	return nil
}

// writeErr types a failed write like [Store.PutFile] does: cancellation
// stays itself, anything else may pass on retry.
func writeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	return errcode.Wrap(err, errcode.ServiceUnavailable, "A file could not be written to the target tenant's storage; the restore can be retried.")
}
