package mem_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/assets/assetstest"
	"github.com/twinit/byok-backup/internal/assets/mem"
	"github.com/twinit/byok-backup/internal/errcode"
)

func TestConformance(t *testing.T) {
	assetstest.Run(t, func(t *testing.T) assets.Store {
		s := mem.New()
		if err := s.Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestMissingSource: as with the adapter (assets/azure
// TestMissingTableAndContainerAreErrors), reading a tenant from a missing
// table or container is ErrSourceMissing naming the setting, not an empty
// tenant.
func TestMissingSource(t *testing.T) {
	s := mem.New()
	ctx := t.Context()
	check := func(what, setting string, err error) {
		t.Helper()
		code, msg := errcode.Public(err)
		if !errors.Is(err, assets.ErrSourceMissing) || code != errcode.ServiceUnavailable || !strings.Contains(msg, setting) {
			t.Errorf("missing %s: err %v (%s %q); want ErrSourceMissing naming %s", what, err, code, msg, setting)
		}
	}
	for _, err := range s.Records(ctx, "t1") {
		check("table", "TABLE_ASSETS", err)
	}
	for _, err := range s.Files(ctx, "t1") {
		check("container", "CONTAINER_ASSETS", err)
	}
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	assetstest.PutRecords(t, s, "t1", assets.Record{RowKey: "a"})
	s.DropTable()
	for _, err := range s.Records(ctx, "t1") {
		check("dropped table", "TABLE_ASSETS", err)
	}
	s.DropContainer()
	for _, err := range s.Files(ctx, "t1") {
		check("dropped container", "CONTAINER_ASSETS", err)
	}
}
