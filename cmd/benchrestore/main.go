// Command benchrestore measures restore throughput against the raw cost of
// moving the same bytes, and the restore's memory, on a private Azurite
// and Key Vault emulator (docs/BENCHMARKS.md, "Restore"):
//
//	go run ./cmd/benchrestore -files 12 -rounds 2
//	go run ./cmd/benchrestore -files 48 -rounds 2
//
// For one backup (seeded assets, made by the real backup pipeline) each
// round runs, interleaved so drift hits both alike:
//
//	raw:     download every chunk blob of the backup and upload the same
//	         bytes as new blobs (Content-MD5, same parallelism)
//	restore: the RestoreWorker's full run (unwrap; pass 1 downloads,
//	         authenticates and spools every chunk while staging file blocks
//	         as uncommitted blocks; pass 2 upserts records and commits the
//	         block lists) into a fresh tenant, replace mode
//
// and reports MB/s of each over the backup's stored bytes, their ratio, and
// the restore's peak Go memory (sampled) and the process's peak RSS. Run
// each size in its own process so the RSS figures compare.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/twinit/byok-backup/internal/app"
	"github.com/twinit/byok-backup/internal/assets"
	"github.com/twinit/byok-backup/internal/blobstore"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/config"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/restore"
)

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenant      = "bench"
)

func main() {
	files := flag.Int("files", 12, "files to seed (sizes cycle 0, ≤1 KiB, fileSize/3, fileSize)")
	records := flag.Int("records", 500, "records to seed")
	fileSize := flag.Int64("file-size", 8<<20, "largest file in bytes")
	rounds := flag.Int("rounds", 2, "interleaved raw/restore rounds")
	parallelism := flag.Int("parallelism", 4, "chunks in flight per stream (restore) and blobs in flight (raw)")
	spool := flag.Int("spool-limit-mb", 0, "RESTORE_SPOOL_LIMIT_MB (0 = its default)")
	var p profiling
	flag.IntVar(&p.smallFiles, "small-files", 0, "instead of -files: this many files of -small-size bytes ...")
	flag.Int64Var(&p.smallSize, "small-size", 256<<10, "size of each -small-files file")
	flag.IntVar(&p.largeFiles, "large-files", 0, "... plus this many of -large-size bytes")
	flag.Int64Var(&p.largeSize, "large-size", 16<<20, "size of each -large-files file")
	flag.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile of the restore rounds to this file")
	flag.StringVar(&p.block, "blockprofile", "", "write a blocking profile of the restore rounds to this file")
	flag.BoolVar(&p.count, "count-requests", false, "route the app's Azure traffic through a counting proxy and report requests per kind during the last restore (adds latency: time figures of such a run are not comparable)")
	flag.Parse()
	if err := run(*files, *records, *fileSize, *rounds, *parallelism, *spool, p); err != nil {
		fmt.Fprintln(os.Stderr, "benchrestore:", err)
		os.Exit(1)
	}
}

func run(nFiles, nRecords int, fileSize int64, rounds, parallelism, spoolLimitMB int, p profiling) error {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	az, err := azurite.Start(ctx, azurite.Options{})
	if err != nil {
		return err
	}
	defer az.Stop()
	emu, err := kvemu.Start(kvemu.Options{})
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := emu.CreateVault("bench-kv", entraTenant, kvemu.AccessPolicy); err != nil {
		return err
	}
	if err := emu.Grant("bench-kv", kvemu.CustomerToken(appID, entraTenant), "get", "wrapKey", "unwrapKey"); err != nil {
		return err
	}
	if err := emu.Grant("bench-kv", kvemu.PlatformToken, "get", "wrapKey", "unwrapKey"); err != nil {
		return err
	}
	for _, k := range []string{"bench", "platform"} {
		if _, err := emu.CreateKey("bench-kv", k, "RSA", 2048, nil); err != nil {
			return err
		}
	}
	// The customer key is tagged for the tenant: BYOK is enabled through
	// the real validation.
	if err := emu.SetTags("bench-kv", "bench", "", map[string]string{keywrap.DefaultOwnershipTag: tenant}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchrestore-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca := filepath.Join(dir, "kv-ca.pem")
	if err := emu.WriteCA(ca); err != nil {
		return err
	}

	connStr := az.ConnectionString()
	var counter *requestCounter
	if p.count {
		if counter, connStr, err = startCountingProxy(az); err != nil {
			return err
		}
		defer counter.Close()
	}

	// The app as the handler builds it; its HTTP edge is not used, so the
	// token settings only have to be valid.
	settings := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "7072",
		"AzureWebJobsStorage":          connStr,
		"PLATFORM_KEY_ID":              emu.VaultURL("bench-kv") + "keys/platform",
		"PLATFORM_CREDENTIAL":          config.CredEmulator,
		"BYOK_APP_CLIENT_ID":           appID,
		"BYOK_CREDENTIAL":              config.CredEmulator,
		"KEYVAULT_URL_TEMPLATE":        emu.URLTemplate(),
		"KEYVAULT_CA_FILE":             ca,
		"AUTH_ISSUER":                  "http://127.0.0.1/",
		"AUTH_AUDIENCE":                "api://benchrestore",
		"AUTH_JWKS_URL":                "http://127.0.0.1/jwks.json",
		"BACKUP_PARALLELISM":           strconv.Itoa(parallelism),
	}
	if spoolLimitMB > 0 {
		settings["RESTORE_SPOOL_LIMIT_MB"] = strconv.Itoa(spoolLimitMB)
	}
	cfg, err := config.Load(func(k string) string { return settings[k] })
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Deps{Logger: log})
	if err != nil {
		return err
	}
	if _, err := a.BYOK.Configure(ctx, tenant, byok.Settings{KeyVaultName: "bench-kv", KeyName: "bench", TenantID: entraTenant}, ""); err != nil {
		return fmt.Errorf("enable BYOK: %w", err)
	}
	blobSvc, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return err
	}
	scratch := blobazure.New(blobSvc.ServiceClient().NewContainerClient("scratch"))
	if err := scratch.CreateContainer(ctx); err != nil {
		return err
	}
	if err := a.Assets.Ensure(ctx); err != nil {
		return err
	}

	var seeded assets.Counts
	if p.smallFiles > 0 || p.largeFiles > 0 {
		seeded, err = seedFixed(ctx, a.Assets, nRecords, p)
	} else {
		seeded, err = seed.Tenant(ctx, a.Assets, tenant, seed.Options{Records: nRecords, Files: nFiles, FileSize: fileSize, Seed: 1})
	}
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	b, err := a.Backups.Request(ctx, tenant, catalog.ReasonManual)
	if err != nil {
		return err
	}
	job := jobqueue.BackupJob{Tenant: b.Tenant, BackupID: b.BackupID, Reason: b.Reason, RequestedAt: b.RequestedAt}
	if err := a.Backups.Run(ctx, job, 1); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if b, err = a.Catalog.GetBackup(ctx, tenant, b.BackupID); err != nil || b.Status != catalog.StatusCompleted || b.KeySource != keywrap.Customer {
		return fmt.Errorf("backup did not complete with the customer key: %v %+v", err, b)
	}

	var rawT, resT, lrT []time.Duration
	var peakHeap uint64
	stopProfiles, err := p.start()
	if err != nil {
		return err
	}
	var azCPU, resWall time.Duration
	var reqs map[string]string
	for i := range rounds {
		d, err := raw(ctx, a.BackupBlobs, scratch, b, parallelism, i)
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		rawT = append(rawT, d)
		if p.smallFiles > 0 || p.largeFiles > 0 {
			runtime.GC()
			d, err := lr(ctx, a.BackupBlobs, a.Assets, b, nRecords, parallelism, p, fmt.Sprintf("bench-lr%d", i))
			if err != nil {
				return fmt.Errorf("LR: %w", err)
			}
			lrT = append(lrT, d)
		}
		runtime.GC()
		counter.Reset()
		cpu0 := az.CPUTime()
		d, peak, err := restoreOnce(ctx, a.Restores, a.Catalog, b, fmt.Sprintf("bench-r%d", i))
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		azCPU += az.CPUTime() - cpu0
		resWall += d
		reqs = counter.Snapshot()
		resT = append(resT, d)
		peakHeap = max(peakHeap, peak)
	}
	if err := stopProfiles(); err != nil {
		return err
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	mb := float64(b.StoredBytes) / 1e6
	rawBest, resBest := best(rawT), best(resT)
	out := map[string]any{
		"files": seeded.Files, "records": seeded.Records, "fileBytes": seeded.Bytes, "storedBytes": b.StoredBytes, "chunks": b.Chunks,
		"rawMBps": round(mb / rawBest.Seconds()), "restoreMBps": round(mb / resBest.Seconds()),
		"ratio":      round(rawBest.Seconds() / resBest.Seconds()),
		"rawSeconds": secs(rawT), "restoreSeconds": secs(resT),
		"restorePeakGoMemMiB": round(float64(peakHeap) / (1 << 20)), "processMaxRSSMiB": round(float64(ru.Maxrss) / 1024),
		"parallelism": parallelism, "cpus": runtime.NumCPU(),
		// Azurite's CPU time over the restore rounds' wall time: 1.0 is one
		// core busy the whole time.
		"azuriteCPUShareDuringRestore": round(azCPU.Seconds() / resWall.Seconds()),
	}
	if len(lrT) > 0 {
		// LR moves the files' bytes, not the stored bytes: its MB/s is over
		// the file bytes, and ratioLR compares times.
		out["lrMBps"] = round(float64(seeded.Bytes) / 1e6 / best(lrT).Seconds())
		out["lrSeconds"] = secs(lrT)
		out["ratioLR"] = round(best(lrT).Seconds() / resBest.Seconds())
	}
	if reqs != nil {
		out["restoreRequests"] = reqs
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// raw downloads every chunk of b and uploads the same bytes as new blobs,
// parallelism at a time: the floor a restore is compared with.
func raw(ctx context.Context, from, to blobstore.Store, b *catalog.Backup, parallelism, round int) (time.Duration, error) {
	var names []string
	err := from.List(ctx, b.Tenant+"/"+b.BackupID+"/", func(i blobstore.Info) error {
		names = append(names, i.Name)
		return nil
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	var first atomic.Value
	for _, n := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			data, err := from.GetBlob(ctx, n)
			if err == nil {
				err = to.PutBlob(ctx, fmt.Sprintf("r%d/%s", round, n), data)
			}
			if err != nil {
				first.CompareAndSwap(nil, err)
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// restoreOnce runs one replace restore into target through the worker and
// samples the Go runtime's memory (heap in use plus stacks) meanwhile.
func restoreOnce(ctx context.Context, svc *restore.Service, cat catalog.Store, b *catalog.Backup, target string) (time.Duration, uint64, error) {
	r := catalog.NewRestore(b.Tenant, b.BackupID, target, catalog.ModeReplace, false, time.Now())
	if err := cat.CreateRestore(ctx, r); err != nil {
		return 0, 0, err
	}
	job := jobqueue.RestoreJob{Tenant: b.Tenant, RestoreID: r.RestoreID}
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if v := ms.HeapInuse + ms.StackInuse; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	err := svc.RunJob(ctx, job, jobqueue.Delivery{DequeueCount: 1})
	d := time.Since(start)
	close(done)
	if err != nil {
		return 0, 0, err
	}
	got, err := cat.GetRestore(ctx, b.Tenant, r.RestoreID)
	if err != nil {
		return 0, 0, err
	}
	if got.State != catalog.RestoreSucceeded || got.Progress.Bytes != b.Bytes {
		return 0, 0, fmt.Errorf("restore ended %s %+v", got.State, got.Error)
	}
	return d, peak.Load(), nil
}

func best(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[0]
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = round(d.Seconds())
	}
	return out
}

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
