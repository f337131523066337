package mem_test

import (
	"testing"

	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/catalogtest"
	"github.com/twinit/byok-backup/internal/catalog/mem"
)

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Store { return mem.New() })
}

func TestRewrapConformance(t *testing.T) {
	catalogtest.RunRewraps(t, func(t *testing.T) catalog.RewrapStore { return mem.NewRewraps() })
}
