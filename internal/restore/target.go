package restore

import (
	"github.com/twinit/byok-backup/internal/assets"
)

// Target is where a restore writes: a tenant's Assets. The Azure adapter
// (assets/azure) and the in-memory store (assets/mem) implement it; tests
// wrap it to inject failures.
type Target = assets.Target

// RecordWriter upserts records in batches.
type RecordWriter = assets.RecordWriter

// Pruner deletes what a replace restore's backup lacks.
type Pruner = assets.Pruner

// StoreTarget returns s as a [Target]. It is the identity now that the
// adapters implement Target themselves; callers keep using it.
func StoreTarget(s assets.Target) Target { return s }
