package backup_test

import (
	"context"
	"fmt"
	"github.com/twinit/byok-backup/internal/testing/memtest"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/twinit/byok-backup/internal/backup"
	blobmem "github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/retention"
	retentionmem "github.com/twinit/byok-backup/internal/retention/mem"
)

// countCalls counts Table Storage requests (a pipeline policy).
type countCalls struct{ n atomic.Int64 }

func (c *countCalls) Do(req *policy.Request) (*http.Response, error) {
	c.n.Add(1)
	return req.Next()
}

// unused stands in for the dependencies a retention run never calls.
type unused struct {
	backup.Source
	keywrap.Wrapper
}
type unusedKeys struct{ backup.KeySettings }
type unusedLeases struct{ backup.Leases }
type unusedQueue struct{ backup.Queue }

// BenchmarkRetention5000 measures one retention run over a tenant with
// 5,000 completed backups in Azurite (rows only; blobs in memory, absent):
// the first run under the default policy (it soft-deletes all but ~60),
// a run with nothing to do, and the purge run 15 days later. Reported per
// phase: Table Storage requests, wall time and the peak live heap above
// the start. Run: go test -run '^$' -bench Retention5000 -benchtime 1x ./internal/backup/
func BenchmarkRetention5000(b *testing.B) { benchRetention(b, 5000) }

// BenchmarkRetention1000 is the same at a fifth of the size: the peak heap
// should grow far less than the row count (no listing is held whole).
func BenchmarkRetention1000(b *testing.B) { benchRetention(b, 1000) }

func benchRetention(b *testing.B, n int) {
	ctx := context.Background()
	calls := &countCalls{}
	tsvc, err := aztables.NewServiceClientFromConnectionString(storage.ConnectionString(),
		&aztables.ClientOptions{ClientOptions: policy.ClientOptions{PerCallPolicies: []policy.Policy{calls}}})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("RetBench%d%d", seq.Add(1), i)
		cat := aztable.New(tsvc.NewClient(name), tsvc.NewClient(name+"R"))
		if err := cat.CreateTables(ctx); err != nil {
			b.Fatal(err)
		}
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		clock := now
		svc, err := backup.New(backup.Options{
			Source: unused{}, Wrapper: unused{}, Keys: unusedKeys{}, Leases: unusedLeases{}, Queue: unusedQueue{},
			PlatformKey: keywrap.Ref{VaultURL: "https://p.vault.azure.net/", KeyName: "p"},
			Catalog:     cat, Blobs: blobmem.New(), Policies: &retentionmem.Store{},
			RetentionDefault:  must1(retention.Parse(retention.DefaultSetting)),
			MaxDeleteFraction: 1, Now: func() time.Time { return clock },
		})
		if err != nil {
			b.Fatal(err)
		}
		// 5,000 hourly backups, written 32 at a time.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for k := range n {
			at := now.Add(-time.Duration(k+1) * time.Hour)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				row := catalog.NewBackup("bench", catalog.ReasonSchedule, at)
				row.Status, row.StartedAt, row.CompletedAt = catalog.StatusCompleted, at, at.Add(time.Minute)
				row.ManifestBlob = "bench/" + row.BackupID + "/a1/manifest"
				if err := cat.CreateBackup(ctx, row); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		for _, phase := range []struct {
			name    string
			advance time.Duration
		}{{"first", 0}, {"steady", 0}, {"purge", 15 * 24 * time.Hour}} {
			clock = clock.Add(phase.advance)
			calls.n.Store(0)
			stop := memtest.PeakHeap()
			start := time.Now()
			b.StartTimer()
			rep, err := svc.Retention(ctx)
			b.StopTimer()
			elapsed, peak := time.Since(start), stop()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(calls.n.Load()), phase.name+"-table-calls")
			b.ReportMetric(float64(peak)/(1<<20), phase.name+"-peak-heap-MiB")
			b.ReportMetric(elapsed.Seconds(), phase.name+"-s")
			b.Logf("%d backups, %s run: %+v in %s, %d Table Storage calls, peak heap +%.2f MiB", n, phase.name, rep, elapsed.Round(time.Millisecond), calls.n.Load(), float64(peak)/(1<<20))
		}
		b.StartTimer()
	}
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
