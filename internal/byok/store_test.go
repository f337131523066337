package byok_test

import (
	"testing"

	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/byok/storetest"
)

// TestMemStore holds the in-memory store the service tests use to the
// ByokSettings table's contract.
func TestMemStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) byok.Store { return byok.NewMemStore() })
}
