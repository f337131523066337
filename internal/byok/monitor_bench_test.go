package byok

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twinit/byok-backup/internal/devstack/kvemu"
)

// BenchmarkMonitor runs the monitor over many tenants, each with its own
// vault in the emulator, a tenth of them slow. It reports tenants/s and the
// run time relative to ceil(N/concurrency) × the slow latency: bounded
// concurrency should keep that ratio near (or below) 1, whereas checking
// one tenant after another would cost N/10 × latency.
func BenchmarkMonitor(b *testing.B) {
	const (
		tenants     = 200
		concurrency = 16
		latency     = 200 * time.Millisecond
	)
	e := newEnv(b, envOptions{concurrency: concurrency, checkTimeout: 10 * time.Second, noOwnership: true})
	for i := range tenants {
		vault := fmt.Sprintf("bench-%03d", i)
		kid := e.vault(vault, 2048)
		if i%10 == 0 {
			e.emu.SetFault(vault, kvemu.Fault{Latency: latency})
		}
		zero, err := e.store.Get(bg(), fmt.Sprintf("t%03d", i))
		must(b, err)
		rec := zero
		rec.Enabled, rec.Version, rec.Settings, rec.KeyID = true, 1, settingsFor(vault), kid
		_, err = e.store.Put(bg(), rec)
		must(b, err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rep, err := e.svc.Monitor(bg())
		must(b, err)
		if rep.Checked != tenants || rep.Active != tenants {
			b.Fatalf("report %+v", rep)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	ideal := time.Duration(math.Ceil(float64(tenants)/concurrency)) * latency
	b.ReportMetric(float64(tenants)/per.Seconds(), "tenants/s")
	b.ReportMetric(per.Seconds()/ideal.Seconds(), "x_ceil(N/c)·latency")
	b.ReportMetric(per.Seconds()/latency.Seconds(), "x_slowVaultLatency")
}
