package azure

import "github.com/twinit/byok-backup/internal/assets"

import "context"

// SeedHook seeds a tenant with the development stack's synthetic assets
// (internal/devstack/seed). That package imports this one, so only the
// external test package can reach it; seed_ext_test.go sets the hook.
var SeedHook func(ctx context.Context, s *Store, tenant string, records, files int, fileSize int64, seed uint64) (assets.Counts, error)
