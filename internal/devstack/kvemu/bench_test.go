package kvemu_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

// BenchmarkWrapUnwrap measures one wrap plus one unwrap of a 32-byte data
// key through the real azkeys client over TLS (RSA-OAEP-256).
func BenchmarkWrapUnwrap(b *testing.B) {
	for _, size := range []int{2048, 4096} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			ctx := context.Background()
			e := kvemu.TestStart(b)
			if err := e.CreateVault("kv1", tenantA, kvemu.RBAC); err != nil {
				b.Fatal(err)
			}
			if _, err := e.CreateKey("kv1", "k1", "RSA", size, nil); err != nil {
				b.Fatal(err)
			}
			c := newClient(b, e, "kv1", kvemu.AdminToken)
			b.ReportAllocs()
			for b.Loop() {
				w, err := c.WrapKey(ctx, "k1", "", wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, dek32), nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.UnwrapKey(ctx, "k1", w.KID.Version(), wrapParams(azkeys.EncryptionAlgorithmRSAOAEP256, w.Result), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
