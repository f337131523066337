package azure_test

import (
	"context"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/devstack/seed"
)

func init() {
	azure.SeedHook = func(ctx context.Context, s *azure.Store, tenant string, records, files int, fileSize int64, n uint64) (assets.Counts, error) {
		return seed.Tenant(ctx, s, tenant, seed.Options{Records: records, Files: files, FileSize: fileSize, Seed: n})
	}
}
