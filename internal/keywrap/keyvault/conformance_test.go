package keyvault

import (
	"testing"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/wraptest"
)

// TestConformance holds the adapter, wired as production is, to the suite
// the in-memory wrapper (keywrap/mem) passes, against the emulator.
func TestConformance(t *testing.T) {
	wraptest.Run(t, func(t *testing.T, tag string) wraptest.Harness {
		e := setup(t, func(o *Options) { o.OwnershipTag = tag })
		must(t, e.emu.CreateVault(wraptest.VaultName, tenant, kvemu.AccessPolicy))
		must(t, e.emu.Grant(wraptest.VaultName, kvemu.CustomerToken(appID, tenant), "get", "wrapKey", "unwrapKey"))
		return wraptest.Harness{Wrapper: e.w, Vault: e.emu, TenantID: tenant, VaultURL: func(name string) string {
			u, err := keywrap.VaultURL(e.emu.URLTemplate(), name)
			must(t, err)
			return u
		}}
	})
}
