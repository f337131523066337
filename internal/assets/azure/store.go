// Package azure is the assets adapter over Azure Storage: records in a
// table (aztables; PartitionKey = tenant, RowKey = asset id) and files in a
// blob container (azblob; blobs `<tenant>/<path>`), as package assets
// describes. It is the only assets code that imports the Azure SDK; the
// in-memory store (assets/mem) is held to it by assets/assetstest.
//
// # Reading (backup)
//
// [Store.Records] pages through the tenant's partition (RowKey order) and
// keeps every property's EDM type: it reads full-metadata JSON from the
// raw response, because aztables re-marshals entities through float64 and
// a whole Double (`3.0` on the wire) would come back as an Int32.
// [Store.Files] pages through the blobs under `<tenant>/` with properties
// and metadata; [Store.OpenFile] streams one file, pinned to the listed
// ETag, with an explicit Accept-Encoding so net/http never gunzips a blob
// stored with Content-Encoding: gzip. Nothing holds more than one listing
// page or one buffer. Metadata names come back lowercased: azblob's
// listing decoder lowercases them (Azure treats them case-insensitively),
// so a restore writes them lowercased.
package azure

import (
	"context"
	"log/slog"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/errcode"
)

var _ assets.Store = (*Store)(nil)

// Store reads and writes tenants' assets: records in one table (contract
// §3: `Assets`, PartitionKey = tenant) and files in one container
// (`assets`, blobs `<tenant>/<path>`). It holds no mutable state; one Store
// serves any number of goroutines.
type Store struct {
	table *aztables.Client
	files *container.Client
	opts  Options
	log   *slog.Logger
	// blocks recycles upload buffers of BlockSize bytes across files.
	blocks sync.Pool
}

// Options tune a [Store]. Zero fields take the defaults.
type Options struct {
	// RecordPageSize is the number of entities per table listing page
	// (default and maximum 1000, the service's).
	RecordPageSize int32
	// FilePageSize is the number of blobs per listing page (default 1000,
	// maximum 5000).
	FilePageSize int32
	// BatchSize is the number of operations per table transaction (default
	// and maximum 100, the service's).
	BatchSize int
	// BatchConcurrency is the number of a RecordWriter's transactions in
	// flight at once (default 4): a restore of many records is otherwise
	// one round trip per 100 records, end to end.
	BatchConcurrency int
	// BlockSize is the upload block size and the largest file sent in one
	// request (default 4 MiB). Upload memory is BlockSize × UploadConcurrency.
	BlockSize int
	// UploadConcurrency is the number of blocks of one file in flight
	// (default 2: Azurite gains nothing above 2–4).
	UploadConcurrency int
	// Logger receives warnings (batch fallbacks); default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.RecordPageSize <= 0 || d.RecordPageSize > 1000 {
		d.RecordPageSize = 1000
	}
	if d.FilePageSize <= 0 || d.FilePageSize > 5000 {
		d.FilePageSize = 1000
	}
	if d.BatchSize <= 0 || d.BatchSize > 100 {
		d.BatchSize = 100
	}
	if d.BatchConcurrency <= 0 {
		d.BatchConcurrency = 4
	}
	if d.BlockSize <= 0 {
		d.BlockSize = 4 << 20
	}
	if d.UploadConcurrency <= 0 {
		d.UploadConcurrency = 2
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}

// New returns a Store over the assets table and the assets container.
// Both clients are built by the caller (handler/main.go); nil opts means
// defaults.
func New(table *aztables.Client, files *container.Client, opts *Options) *Store {
	o := opts.withDefaults()
	return &Store{table: table, files: files, opts: o, log: o.Logger}
}

// Ensure creates the table and the container if they don't exist, so a
// restore into a fresh account (or the local demo) has somewhere to write.
func (s *Store) Ensure(ctx context.Context) error {
	if _, err := s.table.CreateTable(ctx, nil); err != nil && !azerr.HasTableCode(err, aztables.TableAlreadyExists) {
		return errcode.Wrap(azerr.Redact(err), errcode.ServiceUnavailable, "The assets table could not be created. Check the storage account and try again.")
	}
	if _, err := s.files.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return errcode.Wrap(azerr.Redact(err), errcode.ServiceUnavailable, "The assets container could not be created. Check the storage account and try again.")
	}
	return nil
}

func missingTable(err error) error     { return assets.MissingTableError(err) }
func missingContainer(err error) error { return assets.MissingContainerError(err) }

// isTableMissing reports a query on a table that doesn't exist.
func isTableMissing(err error) bool {
	return azerr.HasTableCode(err, aztables.TableNotFound, aztables.ResourceNotFound)
}
