package mem_test

import (
	"testing"

	"github.com/twinit/byok-backup/internal/lease"
	"github.com/twinit/byok-backup/internal/lease/leasetest"
	"github.com/twinit/byok-backup/internal/lease/mem"
)

func TestConformance(t *testing.T) {
	leasetest.Run(t, func(*testing.T) lease.Table { return mem.New() })
}
