package azure

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

// PutFile stores f under `<tenant>/<f.Path>` with its content type,
// encoding, language, disposition, cache control and metadata, reading
// exactly f.Size bytes from content (it never reads past them). Files up
// to [Options.BlockSize] go in one request; larger ones in staged blocks,
// at most [Options.UploadConcurrency] in flight, so memory stays at
// BlockSize × UploadConcurrency whatever the file size. Every staged
// block carries its Content-MD5 (Azurite is much slower without one) and a
// blob written in blocks gets the MD5 of the whole content; a single Put
// Blob gets the one the service computes. The blob appears atomically:
// readers see the old version or the new one.
func (s *Store) PutFile(ctx context.Context, tenant string, f assets.File, content io.Reader) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("file %s can't be written: %w", assets.Tag(f.Path), err)
	}
	bb := s.files.NewBlockBlobClient(prefix(tenant) + f.Path)
	hdr, md := httpHeaders(f), metadataPtrs(f.Metadata)
	var err error
	if f.Size <= int64(s.opts.BlockSize) {
		err = s.putSmall(ctx, bb, f.Size, content, hdr, md)
	} else {
		err = s.putBlocks(ctx, bb, f.Size, content, hdr, md)
	}
	if err != nil {
		if errors.Is(err, assets.ErrShortContent) || ctx.Err() != nil {
			return fmt.Errorf("failed to write file %s of tenant %q: %w", assets.Tag(f.Path), tenant, azerr.Redact(err))
		}
		return errcode.Wrap(fmt.Errorf("failed to write file %s of tenant %q: %w", assets.Tag(f.Path), tenant, azerr.Redact(err)),
			errcode.ServiceUnavailable, "A file could not be written to the target tenant's storage; the restore can be retried.")
	}
	return nil
}

// PutFileBytes stores f whose content is data in one Put Blob, sent as it
// is (no copy into a block buffer) and without a Content-MD5: the restore
// authenticated data before calling, TLS guards it in transit, and the
// service computes and stores the MD5 of a Put Blob itself (as it does for
// chunks: blobstore/azure.Store.PutBlob).
func (s *Store) PutFileBytes(ctx context.Context, tenant string, f assets.File, data []byte) error {
	if err := assets.CheckTenant(tenant); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("file %s can't be written: %w", assets.Tag(f.Path), err)
	}
	if int64(len(data)) != f.Size {
		return fmt.Errorf("file %s: %d bytes of content for a size of %d: %w", assets.Tag(f.Path), len(data), f.Size, assets.ErrShortContent)
	}
	if err := putBlob(ctx, s.files.NewBlockBlobClient(prefix(tenant)+f.Path), data, httpHeaders(f), metadataPtrs(f.Metadata)); err != nil {
		return writeErr(ctx, fmt.Errorf("failed to write file %s of tenant %q: %w", assets.Tag(f.Path), tenant, azerr.Redact(err)))
	}
	return nil
}

func (s *Store) putSmall(ctx context.Context, bb *blockblob.Client, size int64, content io.Reader, hdr *blob.HTTPHeaders, md map[string]*string) error {
	bufp := s.block()
	defer s.blocks.Put(bufp)
	buf := (*bufp)[:size]
	if err := readFull(content, buf); err != nil {
		return err
	}
	return putBlob(ctx, bb, buf, hdr, md)
}

// putBlob writes data with one Put Blob and no client MD5: the service
// computes and stores the MD5 of a Put Blob itself, and Azurite has no
// slow path for it (unlike staged blocks).
func putBlob(ctx context.Context, bb *blockblob.Client, data []byte, hdr *blob.HTTPHeaders, md map[string]*string) error {
	_, err := bb.Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{HTTPHeaders: hdr, Metadata: md})
	return err
}

func (s *Store) putBlocks(ctx context.Context, bb *blockblob.Client, size int64, content io.Reader, hdr *blob.HTTPHeaders, md map[string]*string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	bs := int64(s.opts.BlockSize)
	n := (size + bs - 1) / bs
	ids := make([]string, 0, n)
	slots := make(chan struct{}, s.opts.UploadConcurrency)
	total := md5.New()
	var wg sync.WaitGroup
	var readErr error
	for i := int64(0); i < n && readErr == nil; i++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			readErr = context.Cause(ctx)
			continue
		}
		bufp := s.block()
		buf := (*bufp)[:min(bs, size-i*bs)]
		if err := readFull(content, buf); err != nil {
			s.blocks.Put(bufp)
			<-slots
			readErr = err
			break
		}
		total.Write(buf)
		sum := md5.Sum(buf)
		id := blockID(i)
		ids = append(ids, id)
		wg.Go(func() {
			defer func() { s.blocks.Put(bufp); <-slots }()
			_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(buf)),
				&blockblob.StageBlockOptions{TransactionalValidation: blob.TransferValidationTypeMD5(sum[:])})
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	hdr.BlobContentMD5 = total.Sum(nil)
	_, err := bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{HTTPHeaders: hdr, Metadata: md})
	return err
}

// block returns a BlockSize buffer from the Store's pool.
func (s *Store) block() *[]byte {
	if p, ok := s.blocks.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, s.opts.BlockSize)
	return &b
}

// blockID is the same length for every block, as the service requires.
func blockID(i int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return base64.StdEncoding.EncodeToString(b[:])
}

func readFull(r io.Reader, buf []byte) error {
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return assets.ErrShortContent
		}
		return err
	}
	return nil
}

func httpHeaders(f assets.File) *blob.HTTPHeaders {
	return &blob.HTTPHeaders{
		BlobContentType:        nonEmpty(f.ContentType),
		BlobContentEncoding:    nonEmpty(f.ContentEncoding),
		BlobContentLanguage:    nonEmpty(f.ContentLanguage),
		BlobContentDisposition: nonEmpty(f.ContentDisposition),
		BlobCacheControl:       nonEmpty(f.CacheControl),
	}
}

func metadataPtrs(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
