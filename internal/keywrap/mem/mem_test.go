package mem_test

import (
	"testing"

	"github.com/twinit/byok-backup/internal/keywrap/mem"
	"github.com/twinit/byok-backup/internal/keywrap/wraptest"
)

func TestConformance(t *testing.T) {
	wraptest.Run(t, func(t *testing.T, tag string) wraptest.Harness {
		w := mem.New(mem.Options{OwnershipTag: tag})
		w.CreateVault(wraptest.VaultName)
		return wraptest.Harness{Wrapper: w, Vault: w, VaultURL: mem.VaultURL, TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}
	})
}
