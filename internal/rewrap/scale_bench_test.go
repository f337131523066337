package rewrap

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	for _, n := range []int{500, 5000} {
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
				j := e.start(ctx, Request{To: keywrap.Customer})
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				baseline := ms.HeapInuse
				var peak atomic.Uint64
				done := make(chan struct{})
				go func() {
					t := time.NewTicker(5 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-done:
							return
						case <-t.C:
							var m runtime.MemStats
							runtime.ReadMemStats(&m)
							if m.HeapInuse > peak.Load() {
								peak.Store(m.HeapInuse)
							}
						}
					}
				}()
				t0 := time.Now()
				if err := e.run(ctx, j, 1); err != nil {
					b.Fatal(err)
				}
				took := time.Since(t0)
				close(done)
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
				b.ReportMetric(float64(int64(peak.Load())-int64(baseline))/(1<<20), "peakheapMiB")
				b.Logf("n=%d: %s, %d table calls (%v), wraps %d unwraps %d, peak heap +%.1f MiB",
					n, took.Round(time.Millisecond), calls, diff(before, after), e.count.wraps.Load(), e.count.unwraps.Load(),
					float64(int64(peak.Load())-int64(baseline))/(1<<20))
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
