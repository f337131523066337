package rewrap

import (
	"context"
	"fmt"
	"github.com/twinit/byok-backup/internal/testing/memtest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/blobstore"
	"github.com/twinit/byok-backup/internal/keywrap"
)

// BenchmarkRewrapTenant re-wraps every backup of a tenant (one-record
// backups on the previous customer key version) to the current version,
// through Azurite and the Key Vault emulator. It reports the job's time,
// its Table Storage requests (catalog rows, the Rewraps row, the lease)
// and the peak heap in use above the baseline while it ran: flat in the
// number of backups because the scan holds one page and the workers one
// backup each. Run: go test -run XXX -bench RewrapTenant -benchtime 1x ./internal/rewrap/
func BenchmarkRewrapTenant(b *testing.B) {
	for _, n := range []int{500, 2000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e := newEnv(b)
			ctx := b.Context()
			start := time.Now()
			base := time.Now().Add(-time.Duration(n) * time.Minute)
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
						e.makeBackup(ctx, e.custRef, base.Add(time.Duration(i)*time.Minute))
					}
				}()
			}
			wg.Wait()
			b.Logf("created %d backups in %s", n, time.Since(start).Round(time.Millisecond))
			if _, err := e.emu.RotateKey(vault, keyName); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				before := e.tableCalls.snapshot()
				e.tableCalls.mu.Lock()
				d0 := e.tableCalls.d
				e.tableCalls.mu.Unlock()
				tb := &timedBlobs{Store: e.blobs}
				e.svc.blobs = tb
				j := e.start(ctx, Request{To: keywrap.Customer})
				stopPeak := memtest.PeakHeap()
				t0 := time.Now()
				if err := e.run(ctx, j, 1); err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				peak := stopPeak()
				r := e.rewrapRow(ctx, j.RewrapID)
				if r.Progress.Done != int64(n) || r.Progress.Failed != 0 {
					b.Fatalf("progress %+v", r.Progress)
				}
				after := e.tableCalls.snapshot()
				var calls int64
				for k, v := range after {
					calls += v - before[k]
				}
				b.ReportMetric(float64(took.Milliseconds()), "ms/job")
				b.ReportMetric(float64(calls), "tablecalls/job")
				b.ReportMetric(float64(peak)/(1<<20), "peakheapMiB")
				e.tableCalls.mu.Lock()
				td := e.tableCalls.d - d0
				e.tableCalls.mu.Unlock()
				b.Logf("n=%d: %s, %d table calls (%v, %s in them), wraps %d unwraps %d, peak heap +%.1f MiB; blob time get %s put %s deletePrefix %s",
					n, took.Round(time.Millisecond), calls, diff(before, after), td.Round(time.Millisecond), e.count.wraps.Load(), e.count.unwraps.Load(),
					float64(peak)/(1<<20), time.Duration(tb.get.Load()).Round(time.Millisecond),
					time.Duration(tb.put.Load()).Round(time.Millisecond), time.Duration(tb.del.Load()).Round(time.Millisecond))
			}
		})
	}
}

func diff(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// timedBlobs sums the time spent in each kind of blob request (summed
// over the workers, so it can exceed the job's time).
type timedBlobs struct {
	blobstore.Store
	get, put, del atomic.Int64
}

func (t *timedBlobs) GetBlob(ctx context.Context, name string) ([]byte, error) {
	defer t.since(&t.get, time.Now())
	return t.Store.GetBlob(ctx, name)
}

func (t *timedBlobs) GetBlobInto(ctx context.Context, name string, buf []byte, limit int64) ([]byte, error) {
	defer t.since(&t.get, time.Now())
	return blobstore.GetInto(ctx, t.Store, name, buf, limit)
}

func (t *timedBlobs) PutBlob(ctx context.Context, name string, data []byte) error {
	defer t.since(&t.put, time.Now())
	return t.Store.PutBlob(ctx, name, data)
}

func (t *timedBlobs) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	defer t.since(&t.del, time.Now())
	return t.Store.DeletePrefix(ctx, prefix)
}

func (t *timedBlobs) since(d *atomic.Int64, start time.Time) { d.Add(int64(time.Since(start))) }
