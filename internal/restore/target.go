package restore

import (
	"context"

	"github.com/twinit/byok-backup/internal/assets"
)

// Target is where a restore writes: a tenant's Assets. [StoreTarget] adapts
// *assets.Store; tests wrap it to inject failures.
type Target interface {
	// Ensure creates the assets table and container if they are missing.
	Ensure(ctx context.Context) error
	NewRecordWriter(tenant string) (RecordWriter, error)
	NewRecordPruner(tenant string) (Pruner, error)
	NewFilePruner(tenant string) (Pruner, error)
	// StageBlock uploads one uncommitted, invisible block of a file.
	StageBlock(ctx context.Context, tenant, path, blockID string, data []byte) error
	// CommitFile makes staged blocks a file's content, with its properties.
	CommitFile(ctx context.Context, tenant string, f assets.File, blockIDs []string, contentMD5 []byte) error
}

// RecordWriter upserts records in batches; *assets.RecordWriter implements it.
type RecordWriter interface {
	Put(ctx context.Context, r assets.Record) error
	Flush(ctx context.Context) error
	Written() int64
}

// Pruner deletes what a replace restore's backup lacks; *assets.Pruner
// implements it.
type Pruner interface {
	Keep(ctx context.Context, key string) error
	Finish(ctx context.Context) (int64, error)
}

// StoreTarget adapts an *assets.Store to [Target].
func StoreTarget(s *assets.Store) Target { return storeTarget{s} }

type storeTarget struct{ s *assets.Store }

var _ Target = storeTarget{}

func (t storeTarget) Ensure(ctx context.Context) error { return t.s.Ensure(ctx) }

func (t storeTarget) NewRecordWriter(tenant string) (RecordWriter, error) {
	return t.s.NewRecordWriter(tenant)
}

func (t storeTarget) NewRecordPruner(tenant string) (Pruner, error) {
	return t.s.NewRecordPruner(tenant)
}

func (t storeTarget) NewFilePruner(tenant string) (Pruner, error) { return t.s.NewFilePruner(tenant) }

func (t storeTarget) StageBlock(ctx context.Context, tenant, path, blockID string, data []byte) error {
	return t.s.StageBlock(ctx, tenant, path, blockID, data)
}

func (t storeTarget) CommitFile(ctx context.Context, tenant string, f assets.File, blockIDs []string, contentMD5 []byte) error {
	return t.s.CommitFile(ctx, tenant, f, blockIDs, contentMD5)
}
