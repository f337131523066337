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
	"github.com/twinit/byok-backup/internal/devstack/seed"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	assetsazure "github.com/twinit/byok-backup/internal/assets/azure"
	"github.com/twinit/byok-backup/internal/backup"
	"github.com/twinit/byok-backup/internal/blobstore"
	blobazure "github.com/twinit/byok-backup/internal/blobstore/azure"
	"github.com/twinit/byok-backup/internal/byok"
	"github.com/twinit/byok-backup/internal/catalog"
	"github.com/twinit/byok-backup/internal/catalog/aztable"
	"github.com/twinit/byok-backup/internal/credential"
	"github.com/twinit/byok-backup/internal/devstack/azurite"
	"github.com/twinit/byok-backup/internal/devstack/kvemu"
	"github.com/twinit/byok-backup/internal/edge/invoke"
	"github.com/twinit/byok-backup/internal/jobqueue"
	"github.com/twinit/byok-backup/internal/keywrap"
	"github.com/twinit/byok-backup/internal/keywrap/keyvault"
	"github.com/twinit/byok-backup/internal/lease"
	"github.com/twinit/byok-backup/internal/restore"
)

const (
	appID       = "4ab9f542-0305-4d62-94c9-69786fb5d1ec"
	entraTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
)

func main() {
	files := flag.Int("files", 12, "files to seed (sizes cycle 0, ≤1 KiB, fileSize/3, fileSize)")
	records := flag.Int("records", 500, "records to seed")
	fileSize := flag.Int64("file-size", 8<<20, "largest file in bytes")
	rounds := flag.Int("rounds", 2, "interleaved raw/restore rounds")
	parallelism := flag.Int("parallelism", 4, "chunks in flight per stream (restore) and blobs in flight (raw)")
	spool := flag.Int64("spool-limit", 0, "restore spool limit in bytes (0 = default)")
	flag.Parse()
	if err := run(*files, *records, *fileSize, *rounds, *parallelism, *spool); err != nil {
		fmt.Fprintln(os.Stderr, "benchrestore:", err)
		os.Exit(1)
	}
}

type keys struct{ ref keywrap.Ref }

func (k keys) CustomerKey(context.Context, string) (keywrap.Ref, byok.Settings, bool, error) {
	return k.ref, byok.Settings{KeyVaultName: "bench-kv", KeyName: "bench", TenantID: entraTenant, FallbackToPlatformKey: true}, true, nil
}
func (keys) RecordKeyUse(context.Context, string, error) error { return nil }

type queue struct {
	mu      sync.Mutex
	backups []jobqueue.BackupJob
	jobs    []jobqueue.RestoreJob
}

func (q *queue) Enqueue(_ context.Context, name string, msg any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch m := msg.(type) {
	case jobqueue.BackupJob:
		q.backups = append(q.backups, m)
	case jobqueue.RestoreJob:
		q.jobs = append(q.jobs, m)
	default:
		return fmt.Errorf("unexpected message for %s", name)
	}
	return nil
}

func run(nFiles, nRecords int, fileSize int64, rounds, parallelism int, spoolLimit int64) error {
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
	creds, err := credential.New(credential.Options{Mode: credential.Emulator, AppClientID: appID, PlatformMode: credential.Emulator})
	if err != nil {
		return err
	}
	wrapper, err := keyvault.New(keyvault.Options{Credentials: creds, ApplicationID: appID, CAPEM: emu.CAPEM()})
	if err != nil {
		return err
	}
	vaultURL, err := keywrap.VaultURL(emu.URLTemplate(), "bench-kv")
	if err != nil {
		return err
	}
	custRef := keywrap.Ref{Source: keywrap.Customer, VaultURL: vaultURL, KeyName: "bench", TenantID: entraTenant}
	platRef := keywrap.Ref{Source: keywrap.Platform, VaultURL: vaultURL, KeyName: "platform"}

	tables, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return err
	}
	blobSvc, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		return err
	}
	cat := aztable.New(tables.NewClient("Backups"), tables.NewClient("Restores"))
	if err := cat.CreateTables(ctx); err != nil {
		return err
	}
	backups := blobazure.New(blobSvc.ServiceClient().NewContainerClient("backups"))
	scratch := blobazure.New(blobSvc.ServiceClient().NewContainerClient("scratch"))
	for _, c := range []*blobazure.Store{backups, scratch} {
		if err := c.CreateContainer(ctx); err != nil {
			return err
		}
	}
	store := assetsazure.New(tables.NewClient("Assets"), blobSvc.ServiceClient().NewContainerClient("assets"), &assetsazure.Options{Logger: log, UploadConcurrency: parallelism})
	if err := store.Ensure(ctx); err != nil {
		return err
	}
	leases := lease.New(tables.NewClient("Leases"), nil)
	if err := leases.CreateTable(ctx); err != nil {
		return err
	}
	q := &queue{}

	seeded, err := seed.Tenant(ctx, store, "bench", seed.Options{Records: nRecords, Files: nFiles, FileSize: fileSize, Seed: 1})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	bs, err := backup.New(backup.Options{Source: store, Catalog: cat, Blobs: backups, Wrapper: wrapper, Keys: keys{custRef},
		PlatformKey: platRef, Leases: leases, Queue: q, Logger: log, Parallelism: parallelism})
	if err != nil {
		return err
	}
	b, err := bs.Request(ctx, "bench", catalog.ReasonManual)
	if err != nil {
		return err
	}
	if err := bs.Run(ctx, q.backups[0], 1); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if b, err = cat.GetBackup(ctx, "bench", b.BackupID); err != nil || b.Status != catalog.StatusCompleted {
		return fmt.Errorf("backup did not complete: %v %+v", err, b)
	}

	svc, err := restore.New(restore.Options{Catalog: cat, Blobs: backups, Target: restore.StoreTarget(store), Wrapper: wrapper,
		Keys: keys{custRef}, PlatformKey: platRef, URLTemplate: emu.URLTemplate(), ApplicationID: appID,
		Leases: leases, Queue: q, Logger: log, Parallelism: parallelism, SpoolLimit: spoolLimit})
	if err != nil {
		return err
	}

	var rawT, resT []time.Duration
	var peakHeap uint64
	for i := range rounds {
		d, err := raw(ctx, backups, scratch, b, parallelism, i)
		if err != nil {
			return fmt.Errorf("raw: %w", err)
		}
		rawT = append(rawT, d)
		runtime.GC()
		d, peak, err := restoreOnce(ctx, svc, cat, q, b, fmt.Sprintf("bench-r%d", i))
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		resT = append(resT, d)
		peakHeap = max(peakHeap, peak)
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
func restoreOnce(ctx context.Context, svc *restore.Service, cat catalog.Store, q *queue, b *catalog.Backup, target string) (time.Duration, uint64, error) {
	r := catalog.NewRestore(b.Tenant, b.BackupID, target, catalog.ModeReplace, false, time.Now())
	if err := cat.CreateRestore(ctx, r); err != nil {
		return 0, 0, err
	}
	text, _ := json.Marshal(jobqueue.RestoreJob{Tenant: b.Tenant, RestoreID: r.RestoreID})
	req := &invoke.QueueRequest{Message: invoke.QueueMessage{Text: text, DequeueCount: 1}}
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
	err := svc.Worker(ctx, req)
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
