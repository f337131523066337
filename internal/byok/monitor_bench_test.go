package byok

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"github.com/twinit/byok-backup/internal/testing/memtest"
	"math"
	"strconv"
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

// BenchmarkMonitor1000 runs the monitor over 1,000 BYOK tenants, each with
// its own vault and key in the emulator (tagged for its tenant, so the
// ownership check runs), every vault request delayed by 50 ms. One check
// is a few requests one after another (the key's GET, then wrap and unwrap
// round trip; the challenge probe of a vault not yet signed in to), so the
// ideal run is ceil(N/concurrency) × requests per check × latency; the
// benchmark measures requests per check from the emulator's log and
// reports the ratio to that ideal and to ceil(N/concurrency) × latency.
// Run: go test -run '^$' -bench Monitor1000 -benchtime 1x ./internal/byok/
func BenchmarkMonitor1000(b *testing.B) { benchMonitor(b, 1000) }

// BenchmarkMonitor250 is the same at a quarter of the size: the peak heap
// should not grow with the tenant count.
func BenchmarkMonitor250(b *testing.B) { benchMonitor(b, 250) }

func benchMonitor(b *testing.B, tenants int) {
	const (
		concurrency = 16 // BYOK_MONITOR_CONCURRENCY's default
		latency     = 50 * time.Millisecond
	)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(b, err)
	e := newEnv(b, envOptions{concurrency: concurrency, checkTimeout: 10 * time.Second, oneRSAKey: key})
	for i := range tenants {
		tenant, vault := fmt.Sprintf("t%04d", i), fmt.Sprintf("scale-%04d", i)
		must(b, e.emu.CreateVault(vault, entraA, kvemu.AccessPolicy))
		kid, err := e.emu.CreateKey(vault, "k", "RSA", 2048, nil)
		must(b, err)
		e.tag(vault, "k", tenant)
		must(b, e.emu.Grant(vault, kvemu.CustomerToken(appID, entraA), "get", "wrapKey", "unwrapKey"))
		rec, err := e.store.Get(bg(), tenant)
		must(b, err)
		rec.Enabled, rec.Version, rec.Settings, rec.KeyID = true, 1, settingsFor(vault), kid
		_, err = e.store.Put(bg(), rec)
		must(b, err)
	}
	e.emu.SetFault("", kvemu.Fault{Latency: latency})
	for b.Loop() {
		b.StopTimer()
		e.emu.ResetRequests()
		stop := memtest.PeakHeap()
		start := time.Now()
		b.StartTimer()
		rep, err := e.svc.Monitor(bg())
		b.StopTimer()
		elapsed, peak := time.Since(start), stop()
		must(b, err)
		if rep.Checked != tenants || rep.Active != tenants {
			b.Fatalf("report %+v", rep)
		}
		reqs := e.emu.Requests()
		perCheck := float64(len(reqs)) / float64(tenants)
		ops := map[string]int{}
		for _, r := range reqs {
			ops[r.Op+" "+strconv.Itoa(r.Status)]++
		}
		b.Logf("%d tenants: %+v in %s; vault requests by op and status: %v", tenants, rep, elapsed.Round(time.Millisecond), ops)
		rounds := math.Ceil(float64(tenants) / concurrency)
		b.ReportMetric(elapsed.Seconds(), "run-s")
		b.ReportMetric(perCheck, "requests/check")
		b.ReportMetric(elapsed.Seconds()/(rounds*latency.Seconds()), "x_ceil(N/c)·latency")
		b.ReportMetric(elapsed.Seconds()/(rounds*perCheck*latency.Seconds()), "x_ceil(N/c)·requests·latency")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.StartTimer()
	}
}
