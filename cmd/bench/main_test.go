package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/azerr"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/jobqueue"
)

// TestMain lets the test binary stand in for the command's child
// processes: Run re-executes os.Executable with childEnv set.
func TestMain(m *testing.M) {
	if phase := os.Getenv(childEnv); phase != "" {
		os.Exit(childMain(phase))
	}
	os.Exit(m.Run())
}

// TestShortRunsEveryPhase is CI's smoke test of the command at its -short
// size: every phase (rclone's included; CI installs rclone) runs in its
// child and the table and ratios are printed, with Azurite freed and
// restarted between phases as the command does by default. No speed is
// asserted.
func TestShortRunsEveryPhase(t *testing.T) {
	var out bytes.Buffer
	size := Short
	size.Reclaim = true
	if err := Run(context.Background(), &out, size, 1, Diag{}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	// The five phases, spelled out: not the command's own list.
	for _, ph := range []string{"LB", "backup", "LR", "restore", "B2"} {
		line := regexp.MustCompile(`(?m)^run 1 ` + regexp.QuoteMeta(ph) + ` +[0-9.]+ MiB/s +[0-9.]+ s +peak RSS +[0-9.]+ MiB +Azurite CPU +[0-9.]+ s \+ [0-9.]+ s \(service tables\)$`)
		if !line.MatchString(got) {
			t.Errorf("no measured line for phase %s", ph)
		}
		row := regexp.MustCompile(`(?m)^ *` + regexp.QuoteMeta(ph) + `( +[0-9.]+){4}$`)
		if !row.MatchString(got) {
			t.Errorf("no table row for phase %s", ph)
		}
		if regexp.MustCompile(`(?m)^run 1 ` + regexp.QuoteMeta(ph) + ` .*peak RSS +0\.0 MiB `).MatchString(got) {
			t.Errorf("phase %s: no peak RSS measured for its child", ph)
		}
	}
	for _, r := range []string{"backup/LB", "backup/B2", "restore/LR"} {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(r) + `\t[0-9.]+ / [0-9.]+ / [0-9.]+$`).MatchString(got) {
			t.Errorf("no ratio %s", r)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}

// TestLRTargetAndReclaim: LR's container and table can be made twice (a
// second run with -reclaim=false finds the first's), and reclaiming the
// restore drops its container and table, whether or not they exist, on
// an Azurite restarted in the same folder.
func TestLRTargetAndReclaim(t *testing.T) {
	ctx := t.Context()
	az, err := azurite.Start(ctx, azurite.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { az.Stop() }()
	bs, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := lrTarget(ctx, bs, ts); err != nil {
			t.Fatalf("lrTarget, call %d: %v", i+1, err)
		}
	}
	if _, err := ts.CreateTable(ctx, restoreTable, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.CreateContainer(ctx, restoreContainer, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second finds nothing to drop
		if az, err = reclaim(ctx, az, "restore"); err != nil {
			t.Fatalf("reclaim, call %d: %v", i+1, err)
		}
	}
	bs, _ = azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	ts, _ = aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if _, err := ts.NewClient(restoreTable).GetAccessPolicy(ctx, nil); !azerr.HasTableCode(err, aztables.TableNotFound, aztables.ResourceNotFound) {
		t.Errorf("the restore's table after reclaim: %v, want not found", err)
	}
	if _, err := bs.ServiceClient().NewContainerClient(restoreContainer).GetProperties(ctx, nil); err == nil {
		t.Error("the restore's container survived reclaim")
	}
	if _, err := ts.NewClient(lrTable).GetAccessPolicy(ctx, nil); err != nil {
		t.Errorf("LR's table was dropped by the restore's reclaim: %v", err)
	}
}

func TestParseShape(t *testing.T) {
	s, err := parseShape("2x128+5000x200+100000")
	if err != nil {
		t.Fatal(err)
	}
	want := Size{BigFiles: 2, BigSize: 128 << 20, SmallFiles: 5000, SmallSize: 200 << 10, Records: 100000, SpoolMB: 4096}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	for _, bad := range []string{"", "2x128", "2x0+1x1+1", "-1x128+1x1+1", "2x128+1x-5+1", "a+b+c"} {
		if _, err := parseShape(bad); err == nil {
			t.Errorf("parseShape(%q) accepted", bad)
		}
	}
}

// TestServiceTablesApart: with an Azurite for the service tables
// (app.Deps.ServiceTables, the bench's default), a backup's catalog row,
// its lease and the BYOK settings land there, while the tenant's records
// and the backup's blobs stay in the data's Azurite, which holds no other
// table.
func TestServiceTablesApart(t *testing.T) {
	ctx := t.Context()
	data, svc := azurite.TestStart(t), azurite.TestStart(t)
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	settings, err := keyVault(emu, t.TempDir(), data.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(ctx, settings, svc.ConnectionString(), false)
	if err != nil {
		t.Fatal(err)
	}
	size := Short
	size.SmallFiles, size.BigFiles = 2, 1
	if _, err := seedTenant(ctx, a.Assets, size); err != nil {
		t.Fatal(err)
	}
	row, err := a.Backups.Request(ctx, tenant, catalog.ReasonManual)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Backups.Run(ctx, jobqueue.BackupJob{Tenant: tenant, BackupID: row.BackupID, Reason: row.Reason, RequestedAt: row.RequestedAt}, 1); err != nil {
		t.Fatal(err)
	}
	tables := func(az *azurite.Instance) []string {
		ts, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for p := ts.NewListTablesPager(nil); p.More(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, tb := range page.Tables {
				names = append(names, *tb.Name)
			}
		}
		slices.Sort(names)
		return names
	}
	if got := tables(data); !slices.Equal(got, []string{"Assets"}) {
		t.Errorf("the data's Azurite holds tables %v, want only Assets", got)
	}
	got := tables(svc)
	for _, want := range []string{"Backups", "ByokSettings", "KeyAudit", "Leases", "Restores"} {
		if !slices.Contains(got, want) {
			t.Errorf("the service tables' Azurite lacks %s (has %v)", want, got)
		}
	}
	ts, _ := aztables.NewServiceClientFromConnectionString(svc.ConnectionString(), nil)
	if _, err := ts.NewClient("Backups").GetEntity(ctx, tenant, row.BackupID, nil); err != nil {
		t.Errorf("the backup's catalog row is not in the service tables' Azurite: %v", err)
	}
	b, err := a.Catalog.GetBackup(ctx, tenant, row.BackupID)
	if err != nil || b.Status != catalog.StatusCompleted {
		t.Fatalf("backup %+v, %v; want completed", b, err)
	}
	bs, _ := azblob.NewClientFromConnectionString(data.ConnectionString(), nil)
	n := 0
	for p := bs.NewListBlobsFlatPager("backups", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Segment.BlobItems)
	}
	if n == 0 {
		t.Error("no backup blobs in the data's Azurite")
	}
}
