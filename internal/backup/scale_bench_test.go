package backup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/twinit/byok-backup/internal/testing/memtest"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/twinit/byok-backup/internal/backup"
	blobmem "github.com/twinit/byok-backup/internal/blobstore/mem"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	jobqueueaz "github.com/twinit/byok-backup/internal/jobqueue/azqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/tenants"
	tenantstable "github.com/twinit/byok-backup/internal/tenants/aztable"
)

// rtt delays every request by a round trip while on, standing in for the
// network between a Functions host and its storage account (Azurite on
// loopback answers in well under a millisecond).
type rtt struct {
	d  time.Duration
	on atomic.Bool
}

func (r *rtt) Do(req *policy.Request) (*http.Response, error) {
	if r.on.Load() {
		time.Sleep(r.d)
	}
	return req.Next()
}

// scaleEnv is a scheduler over n tenants in Azurite: the Tenants table,
// the catalog's tables and the queue are real and the test's own.
type scaleEnv struct {
	svc         *backup.Service
	tsvc        *aztables.ServiceClient
	qsvc        *azqueue.ServiceClient
	backupsName string
	queueName   string
	rtt         *rtt
}

// newScaleEnv seeds n enabled tenants (t00000, t00001, …) with batch
// transactions of 100 rows, 8 batches at a time, and builds a scheduler
// over them; mod adjusts the service's options.
func newScaleEnv(tb testing.TB, n int, delay time.Duration, mod func(*backup.Options)) *scaleEnv {
	tb.Helper()
	ctx := context.Background()
	k := seq.Add(1)
	cs := storage.ConnectionString()
	r := &rtt{d: delay}
	pol := policy.ClientOptions{PerCallPolicies: []policy.Policy{r}}
	tsvc, err := aztables.NewServiceClientFromConnectionString(cs, &aztables.ClientOptions{ClientOptions: pol})
	if err != nil {
		tb.Fatal(err)
	}
	qsvc, err := azqueue.NewServiceClientFromConnectionString(cs, &azqueue.ClientOptions{ClientOptions: pol})
	if err != nil {
		tb.Fatal(err)
	}
	e := &scaleEnv{tsvc: tsvc, qsvc: qsvc, rtt: r, backupsName: fmt.Sprintf("ScaleBackups%d", k), queueName: fmt.Sprintf("scale-jobs-%d", k)}
	tt := tsvc.NewClient(fmt.Sprintf("ScaleTenants%d", k))
	dir := tenantstable.New(tt, nil)
	if err := dir.CreateTable(ctx); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for start := 0; start < n; start += 100 {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var batch []aztables.TransactionAction
			for i := start; i < min(start+100, n); i++ {
				ent, err := json.Marshal(aztables.EDMEntity{
					Entity:     aztables.Entity{PartitionKey: tenants.Partition, RowKey: fmt.Sprintf("t%05d", i)},
					Properties: map[string]any{"BackupEnabled": true},
				})
				if err != nil {
					tb.Error(err)
					return
				}
				batch = append(batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ent})
			}
			if _, err := tt.SubmitTransaction(ctx, batch, nil); err != nil {
				tb.Error(err)
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	cat := aztable.New(tsvc.NewClient(e.backupsName), tsvc.NewClient(fmt.Sprintf("ScaleRestores%d", k)))
	if err := cat.CreateTables(ctx); err != nil {
		tb.Fatal(err)
	}
	o := backup.Options{
		Source: unused{}, Wrapper: unused{}, Keys: unusedKeys{}, Leases: unusedLeases{},
		Queue: jobqueueaz.New(qsvc), QueueName: e.queueName, Tenants: dir,
		PlatformKey: keywrap.Ref{VaultURL: "https://p.vault.azure.net/", KeyName: "p"},
		Catalog:     cat, Blobs: blobmem.New(), SweepGrace: time.Hour,
	}
	if mod != nil {
		mod(&o)
	}
	if e.svc, err = backup.New(o); err != nil {
		tb.Fatal(err)
	}
	return e
}

// rows returns how many backup rows each tenant has in the catalog.
func (e *scaleEnv) rows(tb testing.TB) map[string]int {
	tb.Helper()
	sel := "PartitionKey"
	pager := e.tsvc.NewClient(e.backupsName).NewListEntitiesPager(&aztables.ListEntitiesOptions{Select: &sel})
	out := map[string]int{}
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		for _, raw := range page.Entities {
			var ent struct{ PartitionKey string }
			if err := json.Unmarshal(raw, &ent); err != nil {
				tb.Fatal(err)
			}
			out[ent.PartitionKey]++
		}
	}
	return out
}

// messages is the queue's message count (exact on Azurite).
func (e *scaleEnv) messages(tb testing.TB) int {
	tb.Helper()
	p, err := e.qsvc.NewQueueClient(e.queueName).GetProperties(context.Background(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return int(*p.ApproximateMessagesCount)
}

// BenchmarkScheduler10000 measures one BackupScheduler run over 10,000
// enabled tenants in Azurite: wall time of the run and of its phases
// (fan-out, resend of forgotten rows, sweep), the peak live heap above the
// start, and it checks the queue holds one message and the catalog one row
// per tenant; on bare Azurite and with a 10 ms round trip added to every
// request. Run: go test -run '^$' -bench Scheduler10000 -benchtime 1x ./internal/backup/
func BenchmarkScheduler10000(b *testing.B) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("rtt=%s", delay), func(b *testing.B) { benchScheduler(b, 10000, delay, 0) })
	}
}

// BenchmarkScheduler2000 runs 2,000 tenants one at a time and with the
// default pool, on bare Azurite and with a 10 ms round trip added to every
// request (closer to a storage account over the network). The peak heap
// should match the 10,000-tenant run's: nothing grows with the count.
func BenchmarkScheduler2000(b *testing.B) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond} {
		for _, p := range []int{1, backup.DefaultScheduleParallelism} {
			b.Run(fmt.Sprintf("rtt=%s/parallelism=%d", delay, p), func(b *testing.B) { benchScheduler(b, 2000, delay, p) })
		}
	}
}

func benchScheduler(b *testing.B, n int, delay time.Duration, parallelism int) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		e := newScaleEnv(b, n, delay, func(o *backup.Options) { o.ScheduleParallelism = parallelism })
		at := time.Now()
		stop := memtest.PeakHeap()
		start := time.Now()
		// RunScheduler's three phases, timed one by one.
		e.rtt.on.Store(true)
		b.StartTimer()
		rep, err := e.svc.Schedule(ctx, at)
		scheduled := time.Since(start)
		if err == nil {
			_, _, err = e.svc.ResendForgotten(ctx, at)
		}
		resent := time.Since(start)
		if err == nil {
			_, err = e.svc.Sweep(ctx)
		}
		b.StopTimer()
		elapsed, peak := time.Since(start), stop()
		e.rtt.on.Store(false)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Enqueued != n || rep.Failed != 0 {
			b.Fatalf("report %+v", rep)
		}
		msgs, rows := e.messages(b), e.rows(b)
		if msgs != n || len(rows) != n {
			b.Fatalf("%d tenants: %d messages, rows for %d tenants", n, msgs, len(rows))
		}
		b.ReportMetric(elapsed.Seconds(), "run-s")
		b.ReportMetric(scheduled.Seconds(), "fanout-s")
		b.ReportMetric((resent - scheduled).Seconds(), "resend-s")
		b.ReportMetric((elapsed - resent).Seconds(), "sweep-s")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "tenants/s")
		b.ReportMetric(float64(msgs), "messages")
		b.ReportMetric(float64(len(rows)), "rows")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.StartTimer()
	}
}
