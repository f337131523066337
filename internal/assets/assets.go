package assets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"

	"github.com/twinit/byok-backup/internal/errcode"
)

// Counts are a backup's or restore's totals, named as the contract's
// `records`, `files` and `bytes` (file content bytes).
type Counts struct {
	Records int64 `json:"records"`
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"`
}

var tenantRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckTenant returns an InvalidRequest error unless id is a tenant id
// (API.md §3). Every Store method checks its tenant: ids end up in
// OData filters and blob prefixes.
func CheckTenant(id string) error {
	if !tenantRE.MatchString(id) {
		return errcode.New(errcode.InvalidRequest, "%q is not a tenant id: use 1 to 63 lowercase letters, digits and inner hyphens.", id)
	}
	return nil
}

// ErrSourceMissing: the assets table or container itself doesn't exist.
// Reading a tenant's assets from it is a configuration slip (a renamed
// setting, a wrong account), not an empty tenant: a backup made from it
// would be empty, and a `replace` restore of that backup would wipe the
// tenant. An existing table or container without the tenant's records or
// files is an empty tenant, and no error.
var ErrSourceMissing = errors.New("assets: the assets table or container does not exist")

// MissingTableError and MissingContainerError are the errors Records and
// Files yield for a missing source, wrapping cause; the message names the
// setting to check.
func MissingTableError(cause error) error {
	return errcode.Wrap(fmt.Errorf("%w: table: %w", ErrSourceMissing, cause), errcode.ServiceUnavailable,
		"The assets table (setting TABLE_ASSETS, default \"Assets\") does not exist, so the tenant's records could not be read. No backup was made: check the setting and the storage account.")
}

func MissingContainerError(cause error) error {
	return errcode.Wrap(fmt.Errorf("%w: container: %w", ErrSourceMissing, cause), errcode.ServiceUnavailable,
		"The assets blob container (setting CONTAINER_ASSETS, default \"assets\") does not exist, so the tenant's files could not be read. No backup was made: check the setting and the storage account.")
}

// File is one of a tenant's blobs: its tenant-relative path, size and the
// properties a restore keeps.
type File struct {
	// Path is the blob name without the `<tenant>/` prefix.
	Path string
	// Size is the content length in bytes.
	Size               int64
	ContentType        string
	ContentEncoding    string
	ContentLanguage    string
	ContentDisposition string
	CacheControl       string
	// Metadata is the blob's user metadata, names as the listing spells them.
	Metadata map[string]string
	// ETag is the listed version, used by [Store.OpenFile] to read exactly
	// that version. It is not part of the backup format.
	ETag string
}

// ErrFileChanged reports that a file changed between listing and reading;
// the backup that read it should be retried.
var ErrFileChanged = errors.New("file changed while it was being backed up")

// ErrFileGone reports that a listed file was deleted before it was read.
var ErrFileGone = errors.New("file deleted while it was being backed up")

// ErrShortContent reports a content stream that ended before the file's
// declared size.
var ErrShortContent = errors.New("file content is shorter than its declared size")

// Source is a tenant's assets as a backup reads them. The Azure adapter
// (assets/azure) and the in-memory store (assets/mem) implement it; the
// conformance suite assets/assetstest holds them to the same behaviour.
type Source interface {
	// Records yields the tenant's records in RowKey order, with every
	// property's EDM type; it stops at the first error, which it yields.
	// A missing table is an error wrapping [ErrSourceMissing].
	Records(ctx context.Context, tenant string) iter.Seq2[Record, error]
	// Files yields the tenant's files in [CompareKeys] order, with their
	// properties and ETag. A missing container wraps [ErrSourceMissing].
	Files(ctx context.Context, tenant string) iter.Seq2[File, error]
	// OpenFile reads exactly the listed version of f: [ErrFileChanged] if
	// it changed since, [ErrFileGone] if it was deleted.
	OpenFile(ctx context.Context, tenant string, f File) (io.ReadCloser, error)
}

// Target is a tenant's assets as a restore writes them.
type Target interface {
	// Ensure creates the records' table and the files' container if they
	// are missing.
	Ensure(ctx context.Context) error
	NewRecordWriter(tenant string) (RecordWriter, error)
	// Holds reports whether tenant has any record and any file, reading at
	// most a page of each: a replace restore into a target that held
	// nothing before its write pass has nothing to prune.
	Holds(ctx context.Context, tenant string) (records, files bool, err error)
	// NewRecordPruner and NewFilePruner delete, for a replace restore, what
	// the backup lacks; keys are fed in ascending [CompareKeys] order.
	NewRecordPruner(tenant string) (Pruner, error)
	NewFilePruner(tenant string) (Pruner, error)
	// StageBlock uploads one uncommitted, invisible block of a file.
	StageBlock(ctx context.Context, tenant, path, blockID string, data []byte) error
	// CommitFile makes staged blocks a file's content, with its properties.
	CommitFile(ctx context.Context, tenant string, f File, blockIDs []string, contentMD5 []byte) error
	// PutFileBytes stores f whose whole content is data (len(data) must be
	// f.Size) in one request; a restore writes small, already verified
	// files with it. data is not retained.
	PutFileBytes(ctx context.Context, tenant string, f File, data []byte) error
}

// Store is both sides, and writing whole files: what the development stack
// (seeding, the demo) and the tests use.
type Store interface {
	Source
	Target
	// PutFile stores f reading exactly f.Size bytes from content
	// ([ErrShortContent] if it ends sooner), with bounded memory whatever
	// the size.
	PutFile(ctx context.Context, tenant string, f File, content io.Reader) error
	// DeleteFile deletes one file; a missing file is no error.
	DeleteFile(ctx context.Context, tenant, path string) error
}

// RecordWriter upserts records (replace semantics: a written record has
// exactly the given properties) in batches.
type RecordWriter interface {
	Put(ctx context.Context, r Record) error
	Flush(ctx context.Context) error
	// Written is the number of records flushed so far.
	Written() int64
}

// Pruner deletes the keys (record ids or file paths) of a tenant that are
// not kept: Keep is called in ascending order, Finish deletes the rest and
// returns how many were deleted.
type Pruner interface {
	Keep(ctx context.Context, key string) error
	Finish(ctx context.Context) (int64, error)
}
